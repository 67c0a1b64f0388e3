"""Every bad input gives one clear line on stderr, exit code 1, and loses nothing already stored."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import ModelMismatchError
from assistant.index.store import ChunkStore, open_client, open_store
from ingest.cli import main as cli_main
from ingest.loaders import load_path, sample_corpus_path, title_id
from tests.conftest import free_port, make_settings
from tests.test_ingest_store import VECTORS, CountingEmbedder, cli_env, ingest, snapshot

MODEL, DIM = "all-MiniLM-L6-v2", 384


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[tuple[Path, dict[str, Any]]]:  # type: ignore[no-untyped-def]
    """A store holding the ingested sample: (its folder, snapshot of every chunk)."""
    tmp = tmp_path_factory.mktemp("errors")
    s = make_settings(tmp)
    summary = ingest(s, load_path(sample_corpus_path()).papers, CountingEmbedder(embedder, VECTORS))
    assert summary.added == 72
    store = open_store(s, MODEL, DIM)
    try:
        before = snapshot(store)
    finally:
        store.close()
    yield tmp, before


def run_cli(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "ingest", *args]
    return subprocess.run(argv, cwd=tmp, env=cli_env(tmp, **env), capture_output=True, text=True, timeout=180, check=False)


def run_main(capsys: pytest.CaptureFixture[str], tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI's `main` in this process (cheaper than a new interpreter), as a completed process."""
    capsys.readouterr()
    code = cli_main(list(args), make_settings(tmp))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["ingest", *args], code, out, err)


def assert_one_line_error(done: subprocess.CompletedProcess[str], *parts: str, warnings: int = 0) -> str:
    """Exit code 1, nothing on stdout, and stderr is `warnings` warning lines then one `error:` line."""
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == warnings + 1, done.stderr
    assert all(line.startswith("warning: ") for line in lines[:-1]), done.stderr
    line = lines[-1]
    assert line.startswith("error: ")
    assert "Traceback" not in done.stderr
    for part in parts:
        assert part in line, (part, line)
    return line


def assert_intact(tmp: Path, before: dict[str, Any]) -> None:
    """All 72 papers and every one of their chunks are still stored, unchanged."""
    store = open_store(make_settings(tmp), MODEL, DIM, create=False)
    try:
        assert snapshot(store) == before
        assert len(store.papers()) == 72
        assert all(state.complete for state in store.paper_states().values())
    finally:
        store.close()


def sample_lines(*indexes: int) -> list[str]:
    """JSONL lines repeating sample papers exactly: same ids and hashes as stored, so nothing is re-embedded."""
    papers = load_path(sample_corpus_path()).papers
    return [json.dumps({"title": papers[i].title, "abstract": papers[i].abstract}) for i in indexes]


def test_missing_file(stored) -> None:  # type: ignore[no-untyped-def]
    tmp, before = stored
    missing = tmp / "no-such-corpus.jsonl"
    assert_one_line_error(run_cli(tmp, str(missing)), f"error: {missing}: no such file")
    assert_intact(tmp, before)


def test_folder_without_corpus(stored, capsys) -> None:  # type: ignore[no-untyped-def]
    tmp, before = stored
    folder = tmp / "beir-without-corpus"
    folder.mkdir(exist_ok=True)
    assert_one_line_error(run_main(capsys, tmp, str(folder)), f"error: {folder}: is a folder without a corpus.jsonl")
    assert_intact(tmp, before)


def test_undecodable_file(stored, capsys) -> None:  # type: ignore[no-untyped-def]
    tmp, before = stored
    path = tmp / "latin1.jsonl"
    path.write_bytes(("\n".join(sample_lines(0, 1)) + "\n").encode() + b'{"title": "R\xe9sum\xe9", "abstract": "x"}\n')
    assert_one_line_error(run_main(capsys, tmp, str(path)), f"error: {path}:3: not UTF-8 text")
    assert_intact(tmp, before)


def test_malformed_json_line_is_skipped_or_fatal_with_strict(stored) -> None:  # type: ignore[no-untyped-def]
    tmp, before = stored
    path = tmp / "malformed.jsonl"
    first, second = sample_lines(0, 1)
    path.write_text(f'{first}\n{{"title": "cut off", "abstract": \n{second}\n', encoding="utf-8")

    done = run_cli(tmp, str(path), "--json")
    assert done.returncode == 0, done.stderr
    warnings = done.stderr.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: {path}:2: malformed JSON"), done.stderr
    summary = json.loads(done.stdout)
    assert (summary["added"], summary["updated"], summary["unchanged"], summary["chunks"]) == (0, 0, 2, 0)
    assert summary["warnings"] == [warnings[0].removeprefix("warning: ")]
    assert_intact(tmp, before)

    assert_one_line_error(run_cli(tmp, str(path), "--strict"), f"error: {path}:2: malformed JSON")
    assert_intact(tmp, before)


def test_prune_refuses_an_input_with_skipped_records(stored, capsys) -> None:  # type: ignore[no-untyped-def]
    """Pruning after a skipped line would delete that paper (and here 70 others): refused, nothing written."""
    tmp, before = stored
    path = tmp / "malformed-prune.jsonl"
    first, second = sample_lines(0, 1)
    path.write_text(f'{first}\n{{"title": "cut off"\n{second}\n', encoding="utf-8")
    done = run_main(capsys, tmp, str(path), "--prune")
    line = assert_one_line_error(done, "error: --prune refused: 1 record(s) of the input were skipped", warnings=1)
    assert "pruning would remove 70 of the 72 stored papers" in line
    assert_intact(tmp, before)
    # a dry run says what the real run would do: refuse, with the same numbers
    done = run_main(capsys, tmp, str(path), "--prune", "--dry-run", "--json")
    assert assert_one_line_error(done, "error: --prune refused: 1 record(s)", warnings=1) == line
    assert_intact(tmp, before)


def test_empty_title_or_abstract(stored, capsys) -> None:  # type: ignore[no-untyped-def]
    tmp, before = stored
    path = tmp / "empty-fields.jsonl"
    good = sample_lines(2)[0]
    no_title = json.dumps({"title": " ", "abstract": "An abstract without a title."})
    rows = [no_title, good, json.dumps({"title": "Titled", "abstract": ""})]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")

    done = run_main(capsys, tmp, str(path), "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"warning: {path}:1: empty title, record skipped",
        f"warning: {path}:3: empty abstract for 'Titled', record skipped",
    ]
    assert json.loads(done.stdout)["unchanged"] == 1
    assert_intact(tmp, before)

    assert_one_line_error(run_main(capsys, tmp, str(path), "--strict"), f"error: {path}:1: empty title")
    only_empty = tmp / "only-empty.jsonl"
    only_empty.write_text(rows[0] + "\n", encoding="utf-8")
    assert_one_line_error(run_main(capsys, tmp, str(only_empty)), f"error: {only_empty}: no papers found", warnings=1)
    assert_intact(tmp, before)


def test_duplicate_ids_keep_the_last_record(stored, capsys) -> None:  # type: ignore[no-untyped-def]
    tmp, before = stored
    paper = load_path(sample_corpus_path()).papers[4]
    path = tmp / "duplicates.jsonl"
    # Same title, so the same id; the first record's abstract differs from the stored one, the last is identical.
    rows = [json.dumps({"title": paper.title, "abstract": "A different abstract that must not win."}), *sample_lines(4)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")

    done = run_cli(tmp, str(path), "--json")
    assert done.returncode == 0, done.stderr
    pid = title_id(paper.title)
    assert done.stderr.strip().splitlines() == [f"warning: {path}:2: duplicate id {pid!r}, keeping the last one"]
    summary = json.loads(done.stdout)
    assert (summary["unchanged"], summary["updated"], summary["chunks"]) == (1, 0, 0)  # the last record won
    assert_intact(tmp, before)

    assert_one_line_error(run_main(capsys, tmp, str(path), "--strict"), f"error: {path}:2: duplicate id {pid!r}")
    assert_intact(tmp, before)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"name": "a paper", "body": "no known fields"}\n', ":1: cannot detect the format"),
        ("just one paragraph\nof plain text\nwith no blank lines\n", ": cannot detect the format; use --format"),
        ("", ": file is empty"),
    ],
)
def test_undetectable_format(stored, capsys, content: str, message: str) -> None:  # type: ignore[no-untyped-def]
    tmp, before = stored
    path = tmp / "mystery.dat"
    path.write_text(content, encoding="utf-8")
    assert_one_line_error(run_main(capsys, tmp, str(path)), f"error: {path}{message}")
    assert_intact(tmp, before)


def test_unreachable_chroma_server(stored) -> None:  # type: ignore[no-untyped-def]
    tmp, before = stored
    port = free_port()  # nothing listens there
    line = assert_one_line_error(
        run_cli(tmp, "--json", ASSISTANT_CHROMA_HOST="127.0.0.1", ASSISTANT_CHROMA_PORT=str(port)),
        f"127.0.0.1:{port} is unreachable",
    )
    assert "chroma run" in line
    assert_intact(tmp, before)


def test_unreachable_embeddings_endpoint(stored) -> None:  # type: ignore[no-untyped-def]
    tmp, before = stored
    url = f"http://127.0.0.1:{free_port()}/v1"
    path = tmp / "one-changed.jsonl"
    paper = load_path(sample_corpus_path()).papers[6]
    path.write_text(json.dumps({"title": paper.title, "abstract": paper.abstract + " Changed."}) + "\n", encoding="utf-8")
    assert_one_line_error(run_cli(tmp, str(path), ASSISTANT_EMBEDDING_BASE_URL=url), f"embeddings endpoint {url} is unreachable")
    assert_intact(tmp, before)


def test_invalid_setting(stored, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    tmp, before = stored
    monkeypatch.chdir(tmp)  # no .env of the project
    for key, value in cli_env(tmp, ASSISTANT_CHUNK_TOKENS="many").items():
        monkeypatch.setenv(key, value)
    capsys.readouterr()
    code = cli_main([])  # settings from the environment
    _, err = capsys.readouterr()
    done = subprocess.CompletedProcess(["ingest"], code, "", err)
    assert_one_line_error(done, "error: ASSISTANT_CHUNK_TOKENS must be an integer >= 8 (got 'many')")
    assert_intact(tmp, before)


def test_collection_built_with_another_model(stored) -> None:  # type: ignore[no-untyped-def]
    tmp, before = stored
    s = make_settings(tmp)
    client = open_client(s)
    try:
        ChunkStore(client, "other_model_papers", "other-model", 512)
        with pytest.raises(ModelMismatchError) as info:
            ChunkStore(client, "other_model_papers", MODEL, DIM)
        assert "'other-model'" in str(info.value) and "--collection" in str(info.value)
        with pytest.raises(ModelMismatchError, match=f"built with embedding model '{MODEL}'"):
            ChunkStore(client, s.collection, "other-model", DIM)
    finally:
        client.close()

    done = run_cli(tmp, "--collection", "other_model_papers")
    line = assert_one_line_error(done, "collection 'other_model_papers' was built with embedding model 'other-model'")
    assert "ASSISTANT_EMBEDDING_MODEL=other-model" in line
    assert "python -m ingest --collection NEW_NAME" in line
    assert_intact(tmp, before)


def test_store_is_whole_after_every_failure(stored) -> None:  # type: ignore[no-untyped-def]
    """After all the failures above, a normal re-run still finds every paper unchanged."""
    tmp, before = stored
    done = run_cli(tmp, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["unchanged"], summary["added"], summary["updated"], summary["chunks"]) == (72, 0, 0, 0)
    assert_intact(tmp, before)
