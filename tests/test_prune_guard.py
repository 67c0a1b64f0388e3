"""Damaged input never prunes: a page out of step, a JSONL file cut off, or an input that would empty the store."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.errors import InputError
from ingest.cli import main as cli_main
from ingest.loaders import load_path, load_text, sample_corpus_path
from ingest.pipeline import IngestOptions, ingest_report
from tests.conftest import make_settings

HEADER = "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nbyAK and the research community\n\nMar 12\n\n"
N = 8  # papers in the store these tests prune against


def page(pairs: list[tuple[str, str]]) -> str:
    return HEADER + "".join(f"{title}\n\n{abstract}\n\n" for title, abstract in pairs)


def break_abstract(abstract: str) -> str:
    """A paragraph break after the abstract's second sentence, as a copy and paste leaves it."""
    cut = [m.end() for m in re.finditer(r"\. ", abstract)][1]
    return abstract[:cut].rstrip() + "\n\n" + abstract[cut:]


@pytest.fixture(scope="module")
def pairs() -> list[tuple[str, str]]:
    return [(p.title, p.abstract) for p in load_path(sample_corpus_path()).papers]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory, embedder: Any, pairs: list[tuple[str, str]]) -> Iterator[Path]:
    """A store holding the first N papers of the sample, ingested from a page file."""
    tmp = tmp_path_factory.mktemp("prune-guard")
    (tmp / "clean.txt").write_text(page(pairs[:N]), encoding="utf-8")
    summary = ingest_report(make_settings(tmp), load_path(tmp / "clean.txt"), embedder=embedder)
    assert summary.added == N
    yield tmp


def run(capsys: pytest.CaptureFixture[str], tmp: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli_main(list(args), make_settings(tmp))
    out, err = capsys.readouterr()
    return code, out, err


def test_bundled_page_with_two_broken_abstracts_stops_at_the_first(tmp_path: Path, pairs: list[tuple[str, str]]) -> None:
    """The issue's case: a paragraph break in an abstract near the start and another 16 papers later."""
    broken = list(pairs)
    for i in (2, 18):
        broken[i] = (broken[i][0], break_abstract(broken[i][1]))
    path = tmp_path / "broken.txt"
    path.write_text(page(broken), encoding="utf-8")
    lines = path.read_text(encoding="utf-8").split("\n")
    second_half = next(i for i, line in enumerate(lines, 1) if line and broken[2][1].endswith(line))
    with pytest.raises(InputError) as info:
        load_path(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{second_half}: the page is out of step here, a title of paragraph length")


@pytest.mark.parametrize("where", [0, 3, N - 1])
def test_out_of_step_page_with_prune_changes_nothing(stored: Path, capsys, pairs, where: int) -> None:  # type: ignore[no-untyped-def]
    damaged = list(pairs[:N])
    damaged[where] = (damaged[where][0], break_abstract(damaged[where][1]))
    path = stored / f"damaged-{where}.txt"
    path.write_text(page(damaged), encoding="utf-8")
    for extra in ([], ["--dry-run"]):
        code, out, err = run(capsys, stored, str(path), "--prune", "--json", *extra)
        assert (code, out) == (1, ""), err
        assert err.startswith(f"error: {path}:") and ("out of step" in err or "--prune refused" in err), err
    code, out, _ = run(capsys, stored, str(stored / "clean.txt"), "--json")
    assert json.loads(out)["unchanged"] == N


def test_jsonl_cut_off_mid_record_refuses_prune(stored: Path, capsys, pairs) -> None:  # type: ignore[no-untyped-def]
    text = "".join(json.dumps({"title": t, "abstract": a}) + "\n" for t, a in pairs[:N])
    path = stored / "cut.jsonl"
    path.write_text(text[: len(text) * 3 // 4], encoding="utf-8")  # cut in the middle of a record
    code, out, err = run(capsys, stored, str(path), "--prune")
    assert code == 1 and out == ""
    assert "ends in the middle of a record" in err
    assert err.strip().splitlines()[-1].startswith("error: --prune refused: the input looks damaged")


def test_prune_of_more_than_half_needs_force(stored: Path, capsys, pairs) -> None:  # type: ignore[no-untyped-def]
    """A JSONL file cut at a line boundary reads as valid: removing most of the store is refused."""
    path = stored / "head.jsonl"
    path.write_text("".join(json.dumps({"title": t, "abstract": a}) + "\n" for t, a in pairs[:2]), encoding="utf-8")
    code, out, err = run(capsys, stored, str(path), "--prune", "--dry-run")
    assert code == 1 and out == ""
    assert err.strip() == (
        f"error: --prune refused: pruning would remove {N - 2} of the {N} stored papers, more than half "
        "(is the input cut off?); check it, then add --force-prune"
    )
    code, out, err = run(capsys, stored, str(path), "--prune", "--force-prune", "--dry-run", "--json")
    assert code == 0, err
    assert (json.loads(out)["removed"], json.loads(out)["unchanged"]) == (N - 2, 2)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_blank_lines_never_prune_an_unintended_paper(stored: Path, embedder: Any, pairs, data) -> None:  # type: ignore[no-untyped-def]
    """Arbitrary blank lines in a page: the loader refuses, or the dry-run prune removes only the dropped papers."""
    dropped = data.draw(st.sets(st.integers(0, N - 1), max_size=2), label="dropped")
    text = page([pair for i, pair in enumerate(pairs[:N]) if i not in dropped])
    for at in sorted(data.draw(st.lists(st.integers(0, len(text)), min_size=1, max_size=4), label="breaks"), reverse=True):
        text = text[:at] + data.draw(st.sampled_from(["\n\n", "\n \n", "\n\n\n"])) + text[at:]
    s = make_settings(stored)
    try:
        report = load_text(text, "random.txt", "page")
        summary = ingest_report(s, report, IngestOptions(prune=True, dry_run=True), embedder=embedder)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert (summary.added, summary.updated, summary.removed) == (0, 0, len(dropped))
