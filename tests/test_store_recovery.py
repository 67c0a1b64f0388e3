"""A Chroma server that is down at start-up or stops between questions gives one clear line, and the same
Assistant works again once the server is back."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.errors import StoreError
from ingest.loaders import LoadReport, load_path, sample_corpus_path
from tests.conftest import ROOT, free_port, make_settings, wait_for_port

pytestmark = [pytest.mark.server, pytest.mark.slow]

QUESTION = "Which optimizer did program search discover?"


class ChromaProcess:
    """A `chroma run` this test owns, so it may stop and restart it on the same port and data folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server on the same port and --path, and wait until it listens."""
        chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
        with (self.folder / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [chroma, "run", "--path", str(self.folder / "db"), "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        wait_for_port(self.port, 60, self.proc)

    def stop(self) -> None:
        """Terminate the server and wait until it is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


@pytest.fixture
def own_chroma(tmp_path: Path) -> Iterator[ChromaProcess]:
    """A private Chroma server with a persistent data folder, stopped whatever the test did."""
    server = ChromaProcess(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def server_settings(tmp: Path, port: int, collection: str = "recovery") -> Settings:
    """Settings for a Chroma server on loopback, with the BM25 index in the temporary folder."""
    return make_settings(tmp, chroma_host="127.0.0.1", chroma_port=port, collection=collection)


def few_papers(n: int = 8) -> LoadReport:
    """The first sample papers, including the Lion optimizer paper the question is about."""
    papers = load_path(sample_corpus_path()).papers
    lion = [p for p in papers if p.title.startswith("Symbolic Discovery")]
    return LoadReport(papers=lion + [p for p in papers if p not in lion][: n - 1])


def assert_down_message(message: str, port: int) -> None:
    """The unreachable message: one line naming host:port and how to start the server."""
    assert "\n" not in message
    assert f"127.0.0.1:{port}" in message
    assert "chroma run" in message
    assert "Traceback" not in message and "httpx" not in message


def test_server_stopped_between_questions_then_back(tmp_path: Path, own_chroma: ChromaProcess, embedder) -> None:  # type: ignore[no-untyped-def]
    """Same process, same Assistant: works, fails with one clear StoreError while down, works again after restart."""
    from assistant import build_assistant
    from ingest.pipeline import ingest_report

    s = server_settings(tmp_path, own_chroma.port)
    ingest_report(s, few_papers(), embedder=embedder)
    assistant = build_assistant(s, embedder=embedder)
    before = assistant.ask(QUESTION)
    assert not before.refused and before.evidence

    own_chroma.stop()
    for call in (lambda: assistant.ask(QUESTION), assistant.stats, lambda: assistant.retriever.search("Lion optimizer")):
        with pytest.raises(StoreError) as info:
            call()
        assert_down_message(str(info.value), own_chroma.port)

    own_chroma.start()
    after = assistant.ask(QUESTION)
    assert [e.paper_id for e in after.evidence] == [e.paper_id for e in before.evidence]
    assert after.text == before.text
    assert assistant.stats()["papers"] == len(few_papers().papers)


def test_recreated_collection_is_fetched_again(tmp_path: Path, own_chroma: ChromaProcess, embedder) -> None:  # type: ignore[no-untyped-def]
    """A collection dropped and rebuilt under a new id (as after a server reset and re-ingest) is re-fetched by name."""
    from assistant import build_assistant
    from assistant.index.store import open_client
    from ingest.pipeline import ingest_report

    s = server_settings(tmp_path, own_chroma.port)
    ingest_report(s, few_papers(4), embedder=embedder)
    assistant = build_assistant(s, embedder=embedder)
    old_id = assistant.store.collection.id
    assert assistant.ask(QUESTION).evidence

    open_client(s).delete_collection(s.collection)
    with pytest.raises(StoreError, match="no longer exists"):
        assistant.store.count()

    ingest_report(s, few_papers(4), embedder=embedder)
    answer = assistant.ask(QUESTION)
    assert assistant.store.collection.id != old_id
    assert answer.evidence and answer.evidence[0].title.startswith("Symbolic Discovery")


def test_server_down_at_start_up(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """build_assistant against a closed port raises StoreError naming host:port and `chroma run`."""
    from assistant import build_assistant

    port = free_port()
    with pytest.raises(StoreError) as info:
        build_assistant(server_settings(tmp_path, port), embedder=embedder)
    assert_down_message(str(info.value), port)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI subprocess: offline, without any ASSISTANT_ setting of the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_") and k != "OPENAI_API_KEY"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(ROOT), **extra)
    return env


def test_cli_ask_with_dead_server(tmp_path: Path) -> None:
    """`python -m assistant ask` with ASSISTANT_CHROMA_HOST at a closed port: exit 1 and one `error:` line."""
    port = free_port()
    env = cli_env(ASSISTANT_CHROMA_HOST="127.0.0.1", ASSISTANT_CHROMA_PORT=str(port), ASSISTANT_INDEX_DIR=str(tmp_path / "index"))
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "ask", QUESTION], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert_down_message(lines[0], port)
