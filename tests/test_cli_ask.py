"""The answering CLI on the sample store: ask --json, exports, filters and the terminal chat."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.cli import EXIT_CUT, main
from assistant.config import Settings
from tests.conftest import ROOT, make_settings
from tests.faultserver import FaultServer, Step, chunk, text_events


def test_ask_json_has_the_documented_fields(sample_settings: Settings) -> None:
    out = io.StringIO()
    assert main(["ask", "Which work finds an optimizer by searching over programs?", "--json"], sample_settings, out) == 0
    payload = json.loads(out.getvalue())
    for key in ("answer", "mode", "refused", "citations", "papers", "unsupported", "timings"):
        assert key in payload
    assert payload["papers"][0] in {c["title"] for c in payload["citations"]}
    assert "Symbolic Discovery of Optimization Algorithms" in payload["papers"]
    quote = payload["citations"][0]["quotes"][0]
    assert quote["end"] > quote["start"]


def test_title_and_year_filters_narrow_the_papers(sample_settings: Settings) -> None:
    out = io.StringIO()
    main(["ask", "optimizer discovered by program search", "--json", "--title", "Symbolic"], sample_settings, out)
    payload = json.loads(out.getvalue())
    assert payload["papers"] and all("Symbolic" in t for t in payload["papers"])
    out = io.StringIO()
    main(["ask", "optimizer discovered by program search", "--json", "--year-min", "2030"], sample_settings, out)
    assert json.loads(out.getvalue())["papers"] == []  # the sample page has no years, so a year filter excludes all


def test_markdown_and_bibtex_exports(sample_settings: Settings) -> None:
    md, bib = io.StringIO(), io.StringIO()
    main(["ask", "What is DSPy?", "--format", "markdown"], sample_settings, md)
    main(["ask", "What is DSPy?", "--format", "bibtex"], sample_settings, bib)
    assert "## References" in md.getvalue() and "DSPy" in md.getvalue()
    assert bib.getvalue().startswith("@misc{") and "title = {DSPy" in bib.getvalue()


def test_terminal_chat_keeps_history(sample_dir: Path) -> None:
    env = {**os.environ, "ASSISTANT_CHROMA_PATH": str(sample_dir / "chroma"), "ASSISTANT_INDEX_DIR": str(sample_dir / "index")}
    env.pop("ASSISTANT_LLM_BASE_URL", None)
    turns = "What is AlgoFormer?\nWhat are the three parts of its block?\n/quit\n"
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "chat"], input=turns, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # The follow-up only names "its block"; with the history it still finds the looped-transformer paper.
    assert done.stdout.count("On the Expressive Power of a Variant of the Looped Transformer") >= 2


# -- a hostile or failing LLM endpoint (issue 13 item 3, issue 12: exit codes and stderr) -------------------------

MODEL = "fault-model"
# C0 but tab and newline, DEL, C1, bidi embeddings, overrides and isolates: none may reach a terminal.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
ESC_ANSWER = (
    "\x1b[2J\x1b[HDSPy is a programming model \x1b]0;pwned\x07that compiles \u202edeclarative\u202c pipelines "
    "\x9b31m into optimized prompts [1]."
)


def fault_settings(sample_dir: Path, srv: FaultServer) -> Settings:
    return make_settings(sample_dir, llm_base_url=srv.base_url, llm_model=MODEL, llm_max_retries=0)


def json_strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*json_strings(k), *json_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in json_strings(v)]
    return []


@pytest.mark.slow
@pytest.mark.parametrize("options", [[], ["--json"], ["--format", "markdown"], ["--format", "bibtex"]], ids=str)
def test_escape_sequences_from_the_llm_never_reach_the_terminal(sample_dir: Path, options: list[str]) -> None:
    with FaultServer(Step("stream", events=text_events(ESC_ANSWER, 3)), models=[MODEL]) as srv:
        out, err = io.StringIO(), io.StringIO()
        code = main(["ask", "What is DSPy?", *options], fault_settings(sample_dir, srv), out, err)
    assert code == 0, err.getvalue()
    assert not CONTROL.search(out.getvalue() + err.getvalue()), ascii(out.getvalue())
    assert "pwned" not in out.getvalue()  # the OSC title change went with its sequence
    if options == ["--json"]:
        payload = json.loads(out.getvalue())
        assert payload["answer"].startswith("DSPy is a programming model")
        assert not any(CONTROL.search(s) for s in json_strings(payload))
    elif not options:
        assert out.getvalue().startswith("DSPy is a programming model that compiles ")


@pytest.mark.slow
def test_chat_shows_no_escape_sequences(sample_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("What is DSPy?\n/quit\n"))
    with FaultServer(Step("stream", events=text_events(ESC_ANSWER, 5)), models=[MODEL]) as srv:
        out, err = io.StringIO(), io.StringIO()
        assert main(["chat"], fault_settings(sample_dir, srv), out, err) == 0
    assert "DSPy is a programming model" in out.getvalue()
    assert not CONTROL.search(out.getvalue() + err.getvalue()), ascii(out.getvalue())


@pytest.mark.slow
def test_a_cut_answer_exits_3_with_the_error_on_stderr(sample_dir: Path) -> None:
    partial = [chunk("DSPy is a programming model"), chunk(" that compiles declarative pipelines [1].")]
    with FaultServer(Step("cut", events=partial), models=[MODEL]) as srv:
        out, err = io.StringIO(), io.StringIO()
        code = main(["ask", "What is DSPy?"], fault_settings(sample_dir, srv), out, err)
    assert code == EXIT_CUT == 3
    assert out.getvalue().startswith("DSPy is a programming model that compiles") and "\nSources:\n" in out.getvalue()
    assert "error:" not in out.getvalue()
    errors = [line for line in err.getvalue().splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].endswith("(answer incomplete)"), err.getvalue()


def test_help_documents_the_exit_codes() -> None:
    done = subprocess.run([sys.executable, "-m", "assistant", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert "exit codes:" in done.stdout and re.search(r"^\s+3\s+the answer was cut off", done.stdout, re.M)
