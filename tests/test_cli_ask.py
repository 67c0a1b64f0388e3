"""The answering CLI on the sample store: ask --json, exports, filters and the terminal chat."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from assistant.cli import main
from assistant.config import Settings
from tests.conftest import ROOT


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
