"""The Streamlit app under AppTest: a question answered with sources, and each failure shown as a clear error."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, SHARED, free_port

APP = str(ROOT / "ui" / "app.py")
pytestmark = pytest.mark.slow


def _clear_caches() -> None:
    """Forget the settings and assistant of the previous test; the embedder stays, every test uses the same model."""
    import streamlit as st

    from ui import resources

    resources.clear_caches()
    st.cache_data.clear()


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A clean environment: no .env (the working folder is empty), no ASSISTANT_ variables, fresh caches."""
    for key in list(os.environ):
        if key.startswith("ASSISTANT_") or key == "OPENAI_API_KEY":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASSISTANT_FEEDBACK_PATH", str(tmp_path / "feedback.jsonl"))
    _clear_caches()
    yield tmp_path
    _clear_caches()


def _use_store(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setenv("ASSISTANT_CHROMA_PATH", str(folder / "chroma"))
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(folder / "index"))


def _question() -> str:
    """The first lookup question of the shared evaluation set."""
    with (SHARED / "eval" / "questions.jsonl").open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return next(r["question"] for r in rows if r["type"] == "lookup" and not r.get("history"))


def _texts(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])


def test_question_is_answered_with_numbered_sources_then_new_chat_clears(
    app_env: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_store(monkeypatch, sample_dir)
    at = AppTest.from_file(APP, default_timeout=300).run()
    assert not at.exception
    assert not at.error
    sidebar = "\n".join(c.value for c in at.sidebar.caption)
    assert "extractive, no LLM configured" in sidebar and "ASSISTANT_LLM_BASE_URL" in sidebar
    assert "72 papers" in sidebar and "all-MiniLM-L6-v2" in sidebar
    assert [s.label for s in at.sidebar.selectbox][:1] == ["Mode"]

    question = _question()
    at.chat_input[0].set_value(question).run()
    assert not at.exception
    assert not at.error
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    text = _texts(at)
    assert "AlphaCode" in text and "[1]" in text
    assert "mode: ask" in text and "retrieval" in text and "Cites" in text
    sources = [e.label for e in at.expander if e.label.startswith("**[")]
    assert sources and sources[0].startswith("**[1]**") and "relevance" in sources[0]
    assert any(":color[" in m.value for m in at.markdown), "cited sentences are highlighted in an abstract"
    assert [b.label for b in at.download_button] == ["Markdown", "BibTeX"]

    at.feedback[0].set_value(1).run()
    lines = (app_env / "feedback.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[-1])
    assert record["question"] == question and record["rating"] == "up"
    assert record["citations"] and {"n", "paper_id", "title", "quotes"} <= set(record["citations"][0])
    # The history re-renders on every rerun, sources included.
    assert len(at.chat_message) == 2 and any(e.label.startswith("**[1]**") for e in at.expander)

    at.sidebar.button(key="new_chat").click().run()
    assert len(at.chat_message) == 0
    assert at.session_state["messages"] == []


def test_refusal_is_a_warning_with_the_closest_papers(app_env: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_store(monkeypatch, sample_dir)
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.chat_input[0].set_value("What is the boiling point of tungsten in kelvin?").run()
    assert not at.exception
    assert not at.error
    assert at.warning and "does not answer this question" in at.warning[0].value
    assert "Closest papers found" in at.warning[0].value
    # Only the closest papers are listed: the longer source list shown while answering is gone.
    sources = [e.label for e in at.expander if e.label.startswith("**[")]
    assert len(sources) == 3, sources


def test_missing_collection_says_run_ingest(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_store(monkeypatch, app_env / "empty")
    at = AppTest.from_file(APP, default_timeout=300).run()
    assert not at.exception
    assert at.error and "run ingest first" in at.error[0].value
    assert any("bundled sample" in b.label for b in at.button)
    assert not at.chat_input


def test_empty_collection_says_run_ingest(app_env: Path, monkeypatch: pytest.MonkeyPatch, embedder) -> None:  # type: ignore[no-untyped-def]
    from assistant import Settings
    from assistant.index.store import open_store

    _use_store(monkeypatch, app_env / "store")
    open_store(Settings(), embedder.name, embedder.dim)  # the collection exists and holds nothing
    at = AppTest.from_file(APP, default_timeout=300).run()
    assert not at.exception
    assert at.error and "empty" in at.error[0].value and "ingest" in at.error[0].value
    assert any("bundled sample" in b.label for b in at.button)


def test_unreachable_llm_shows_the_error_and_the_evidence(
    app_env: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_store(monkeypatch, sample_dir)
    port = free_port()  # nothing listens there
    monkeypatch.setenv("ASSISTANT_LLM_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("ASSISTANT_LLM_MODEL", "missing-model")
    monkeypatch.setenv("ASSISTANT_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("ASSISTANT_LLM_TIMEOUT", "5")
    at = AppTest.from_file(APP, default_timeout=300).run()
    assert not at.exception
    assert any(f"missing-model @ 127.0.0.1:{port}" in c.value for c in at.sidebar.caption)
    at.chat_input[0].set_value(_question()).run()
    assert not at.exception
    assert at.error, "the LLM failure is shown"
    message = at.error[0].value
    assert "could not answer" in message and f"127.0.0.1:{port}" in message and "ASSISTANT_LLM_BASE_URL" in message
    sources = [e.label for e in at.expander if e.label.startswith("**[")]
    assert sources, "the evidence found before generation is still listed"
    assert any("AlphaCode" in s for s in sources)


def test_chroma_server_down_shows_the_fix(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("ASSISTANT_CHROMA_PORT", str(free_port()))
    at = AppTest.from_file(APP, default_timeout=300).run()
    assert not at.exception
    assert at.error and "unreachable" in at.error[0].value and "chroma run" in at.error[0].value


def test_corpus_page_lists_and_removes_papers(app_env: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = app_env / "copy"
    shutil.copytree(sample_dir, copy)
    _use_store(monkeypatch, copy)
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("pages/corpus.py").run()
    assert not at.exception
    assert at.metric[0].value == "72"
    at.text_input(key="corpus_query").input("AlphaCode").run()
    titles = [e.label for e in at.expander]
    assert titles == ["Competition-Level Code Generation with AlphaCode"]
    at.button(key=next(b.key for b in at.button if b.key and b.key.startswith("remove-"))).click().run()
    assert not at.exception
    assert at.metric[0].value == "71"
    assert any("Removed" in s.value for s in at.success)
    assert not [e.label for e in at.expander]


@pytest.mark.llm
def test_answer_streams_from_a_real_llm(app_env: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch, llama_server) -> None:  # type: ignore[no-untyped-def]
    _use_store(monkeypatch, sample_dir)
    monkeypatch.setenv("ASSISTANT_LLM_BASE_URL", llama_server.base_url)
    monkeypatch.setenv("ASSISTANT_LLM_MODEL", llama_server.model)
    monkeypatch.setenv("ASSISTANT_LLM_TIMEOUT", "240")
    monkeypatch.setenv("ASSISTANT_CONTEXT_WINDOW", "4096")
    monkeypatch.setenv("ASSISTANT_MAX_ANSWER_TOKENS", "160")
    at = AppTest.from_file(APP, default_timeout=600).run()
    assert any(f"{llama_server.model} @ 127.0.0.1:{llama_server.port}" in c.value for c in at.sidebar.caption)
    at.sidebar.slider(key="top_k").set_value(3).run()
    at.chat_input[0].set_value(_question()).run()
    assert not at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    text = _texts(at)
    assert "written by the LLM" in text and "first token" in text
    assert [e.label for e in at.expander if e.label.startswith("**[")], "the sources are listed under the answer"
    assert not [e.value for e in at.error], "a working LLM gives no error"


def test_rendering_helpers_escape_source_text() -> None:
    from ui.components import highlighted_markdown, merge_spans, safe_deltas, safe_markdown, safe_url

    assert merge_spans([(5, 9), (0, 3), (2, 4), (8, 99), (7, 7)], 20) == [(0, 4), (5, 20)]
    abstract = "Intro [x](javascript:y) <b>. Cited ![i](http://h/i.png) part. End *z*."
    start = abstract.index("Cited")
    end = abstract.index(" End")
    marked = highlighted_markdown(abstract, [(start, end)])
    assert marked.count(":color[") == 1
    assert "\\[x\\](javascript:y)" in marked and "\\<b\\>" in marked and "\\!\\[i\\]" in marked and "\\*z\\*" in marked
    assert safe_markdown("see ![x](http://h/x.png)") == "see !\\[x](http://h/x.png)"
    assert "".join(safe_deltas(["a !", "[x](u) b!", ""])) == "a !\\[x](u) b!"
    assert safe_url("javascript:alert(1)") is None
    assert safe_url("https://example.org/a (b)") == "https://example.org/a%20%28b%29"
