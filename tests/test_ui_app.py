"""The Streamlit app under AppTest: a question answered with sources, and each failure shown as a clear error."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from assistant.models import Filters
from assistant.output.render import md_escape
from tests.conftest import ROOT, SHARED, free_port
from tests.ui_corpus import LITERAL_SHOWN, LITERAL_TITLE, PAPERS, PLANTED_ROWS, QUASAR, QUASAR_QUESTION, planted_store

APP = str(ROOT / "ui" / "app.py")
MODELS = {"object": "list", "data": [{"id": "served-model", "object": "model", "owned_by": "test"}]}
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


def test_llm_failing_after_start_shows_the_error_and_the_evidence(
    app_env: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.faultserver import FaultServer, Step

    _use_store(monkeypatch, sample_dir)
    # The start-up check finds the model; every request after it has the connection dropped.
    with FaultServer(Step("json", body=MODELS), Step("close")) as server:
        monkeypatch.setenv("ASSISTANT_LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("ASSISTANT_LLM_MODEL", "served-model")
        monkeypatch.setenv("ASSISTANT_LLM_MAX_RETRIES", "0")
        monkeypatch.setenv("ASSISTANT_LLM_TIMEOUT", "5")
        at = AppTest.from_file(APP, default_timeout=300).run()
        assert not at.exception and not at.error
        assert any(f"served-model @ 127.0.0.1:{server.port}" in c.value for c in at.sidebar.caption)
        at.chat_input[0].set_value(_question()).run()
    assert not at.exception
    assert at.error, "the LLM failure is shown"
    message = at.error[0].value
    assert "could not answer" in message and f"127.0.0.1:{server.port}" in message and "ASSISTANT_LLM_BASE_URL" in message
    sources = [e.label for e in at.expander if e.label.startswith("**[")]
    assert sources, "the evidence found before generation is still listed"
    assert any("AlphaCode" in s for s in sources)


def test_an_unbacked_llm_answer_comes_with_the_evidence(app_env: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.faultserver import FaultServer, Step, text_events

    _use_store(monkeypatch, sample_dir)
    # A served answer whose every claim cites a source that does not say it: the reader gets the evidence instead.
    unbacked = "The moon is made of green cheese [1]. Penguins fly over the Sahara every night [2]."
    with FaultServer(Step("stream", events=text_events(unbacked, 8)), models=["served-model"]) as server:
        monkeypatch.setenv("ASSISTANT_LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("ASSISTANT_LLM_MODEL", "served-model")
        at = AppTest.from_file(APP, default_timeout=300).run()
        at.chat_input[0].set_value(_question()).run()
    assert not at.exception and not at.error
    notes = [i.value for i in at.info]
    assert any("not backed by the sources" in n for n in notes), notes
    shown_md = [m.value for m in at.markdown]
    flagged = next(i for i, m in enumerate(shown_md) if "green cheese" in m)
    assert "not supported by the cited sources" in shown_md[flagged]
    evidence = shown_md[flagged + 1]  # the fallback follows the flagged answer
    assert evidence.startswith("**Competition-Level Code Generation with AlphaCode** [1]") and "Codeforces" in evidence


@pytest.mark.parametrize("fault", ["unknown model", "unreachable"])
def test_a_bad_llm_setting_is_reported_before_the_first_question(
    app_env: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    from tests.faultserver import FaultServer, Step

    _use_store(monkeypatch, sample_dir)
    with FaultServer(Step("json", body=MODELS)) as server:
        url = server.base_url if fault == "unknown model" else f"http://127.0.0.1:{free_port()}/v1"
        monkeypatch.setenv("ASSISTANT_LLM_BASE_URL", url)
        monkeypatch.setenv("ASSISTANT_LLM_MODEL", "missing-model")
        at = AppTest.from_file(APP, default_timeout=300).run()
        seen = [(r.method, r.path) for r in server.seen]
    assert not at.exception
    assert at.error, "the page says what is wrong before anything is asked"
    message = at.error[0].value
    assert "LLM endpoint cannot be used" in message and "ASSISTANT_LLM_BASE_URL" in message
    if fault == "unknown model":
        assert "missing-model" in message and "served-model" in message, message
        assert seen == [("GET", "/v1/models")], "one cheap request, no chat completion"
    else:
        assert "unreachable" in message
    assert at.chat_input, "questions stay open: their answers list the papers found"
    assert any(b.key == "retry_llm" for b in at.button)


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


# -- the planted papers: literal characters, comparison cards, filters, downloads, the map ------------


@pytest.fixture(scope="module")
def planted_dir(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path, embedder: Any) -> Path:
    return planted_store(tmp_path_factory.mktemp("planted") / "store", sample_dir, embedder)


@pytest.fixture
def planted_app(app_env: Path, planted_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    _use_store(monkeypatch, planted_dir)
    at = AppTest.from_file(APP, default_timeout=300).run()
    assert not at.exception and not at.error
    return at


def _sources(at: AppTest) -> list[str]:
    return [e.label for e in at.expander if e.label.startswith("**[")]


def _chart_rows(at: AppTest) -> list[list[dict[str, Any]]]:
    """The rows behind each map on the page."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    return [convert_arrow_bytes_to_pandas_df(c.proto.data.data).to_dict("records") for c in at.get("vega_lite_chart")]


def test_literal_characters_show_as_written_in_answer_cards_and_sources(planted_app: AppTest) -> None:
    """Every `%`, `$`, `*`, `_`, `|` and `<` of the planted abstract reaches Markdown escaped, so it shows as written,
    and its LaTeX arrives as text (Tülu, 67%, α): in the answer, in the comparison cards and in the sources."""
    at = planted_app
    at.chat_input[0].set_value("Compare Zygomorph and Quasar Prism").run()
    assert not at.exception and not at.error
    answer = at.session_state["messages"][-1]["answer"]
    assert answer.mode == "compare" and any(ev.paper_id == "zygo-literal" for ev in answer.evidence)
    markdown = [m.value for m in at.markdown]
    title = md_escape(LITERAL_TITLE)
    assert "\\$" not in title and "\\*Stars\\*" in title and "snake\\_case \\| Pipes for \\<Tags\\>" in title
    cards = [m for m in markdown if m.startswith("**\\[") and m.endswith("**")]
    assert len(cards) == len(answer.table), "one card per paper"
    assert any(title in c for c in cards), cards
    assert any(title in e for e in _sources(at)), "the source's title"
    sources = "\n".join(m for m in markdown if ":color[" in m or "Zygomorph" in m)
    for literal in LITERAL_SHOWN:
        assert md_escape(literal) in sources, literal
    assert not any('T\\"ulu' in m or "\\%" in m or "alpha" in m for m in markdown), "no LaTeX reaches the page"


def test_comparison_is_one_card_per_paper_and_each_answer_has_a_map(planted_app: AppTest) -> None:
    at = planted_app
    at.chat_input[0].set_value("How do CoGEX and Think-and-Execute use pseudo-code differently?").run()
    assert not at.exception and not at.error
    answer = at.session_state["messages"][-1]["answer"]
    assert answer.mode == "compare" and len(answer.table) >= 2
    markdown = [m.value for m in at.markdown]
    assert not any("|---" in m for m in markdown), "no five-column Markdown table squeezed into the chat column"
    for n, row in enumerate(answer.table, 1):
        assert f"**\\[{n}\\] {md_escape(row['Paper'])}**" in markdown, row
    assert any(e.label == "Where these papers sit in the collection" for e in at.expander)
    (rows,) = _chart_rows(at)
    assert len(rows) == PAPERS
    cited = {r["title"] for r in rows if r["role"] == "cited"}
    assert cited == {c.title for c in answer.citations}
    assert {r["title"] for r in rows if r["role"] in ("cited", "retrieved")} == {ev.title for ev in answer.evidence}

    at.switch_page("pages/corpus.py").run()
    assert not at.exception
    (rows,) = _chart_rows(at)
    assert len(rows) == PAPERS and {r["role"] for r in rows} == {"other"}
    assert len({r["theme"] for r in rows}) > 1 and all(r["title"] for r in rows)


FILTERS: list[tuple[str, Any, set[str]]] = [
    ("years", (2021, 2024), {"Sieve", "Prism"}),
    ("years", (2019, 2021), {"Ledger", "Sieve"}),
    ("author", "Okafor", {"Ledger", "Prism"}),
    ("category", "cs.IR", {"Ledger"}),
    ("title", "Prism", {"Prism"}),
]


@pytest.mark.parametrize(("widget", "value", "expected"), FILTERS, ids=[f"{w}={v}" for w, v, _ in FILTERS])
def test_each_filter_narrows_the_sources(planted_app: AppTest, widget: str, value: Any, expected: set[str]) -> None:
    at = planted_app
    at.chat_input[0].set_value(QUASAR_QUESTION).run()
    unfiltered = {name for name in QUASAR if any(f"Quasar {name}:" in s for s in _sources(at))}
    assert unfiltered == set(QUASAR), _sources(at)
    at.sidebar.button(key="new_chat").click().run()
    element = {"years": at.sidebar.slider, "category": at.sidebar.selectbox}.get(widget, at.sidebar.text_input)
    element(key=widget).set_value(value).run()
    at.chat_input[0].set_value(QUASAR_QUESTION).run()
    assert not at.exception and not at.error
    answer = at.session_state["messages"][-1]["answer"]
    shown = {name for name in QUASAR if any(f"Quasar {name}:" in s for s in _sources(at))}
    assert shown == expected, _sources(at)
    assert len(_sources(at)) == len(answer.evidence)
    wanted = _as_filters(widget, value)
    for ev in answer.evidence:
        row = next((r for r in PLANTED_ROWS if r["id"] == ev.paper_id), {"title": ev.title})
        meta = {**row, "authors": "; ".join(row.get("authors", ())), "categories": " ".join(row.get("categories", ()))}
        assert wanted.match(meta), f"{ev.title} is listed although the filter {wanted} excludes it"


def _as_filters(widget: str, value: Any) -> Filters:
    if widget == "years":
        return Filters(year_min=value[0], year_max=value[1])
    return Filters(**{widget: value})


class _Recording(MemoryMediaFileStorage):
    """The test runtime's media storage, kept so that a download button's file can be read back."""

    made: ClassVar[list[MemoryMediaFileStorage]] = []

    def __init__(self, media_endpoint: str) -> None:
        super().__init__(media_endpoint)
        self.made.append(self)


def _download(at: AppTest, label: str) -> str:
    button = next(b for b in at.download_button if b.label == label)
    name = button.proto.url.rsplit("/", 1)[-1]
    return _Recording.made[-1].get_file(name).content.decode("utf-8")


def test_downloads_hold_the_answer_and_its_references(
    planted_app: AppTest, monkeypatch: pytest.MonkeyPatch, app_env: Path, planted_dir: Path
) -> None:
    monkeypatch.setattr("streamlit.testing.v1.app_test.MemoryMediaFileStorage", _Recording)
    at = planted_app
    at.chat_input[0].set_value("What does Zygomorph keep of its input, and what does it cost per run?").run()
    assert not at.exception and not at.error
    answer = at.session_state["messages"][-1]["answer"]
    cited = [c for c in answer.citations if c.paper_id == "zygo-literal"]
    assert cited, answer.citations

    markdown = _download(at, "Markdown")
    assert markdown.startswith("# What does Zygomorph keep of its input")
    assert "## References" in markdown
    assert f"{cited[0].n}. {md_escape(LITERAL_TITLE)} (2024, Dana Ruiz)" in markdown
    for quote in cited[0].quotes:
        assert f"> {md_escape(quote.text)} (characters {quote.start}-{quote.end})" in markdown

    bibtex = _download(at, "BibTeX")
    assert bibtex.count("@") == len({c.n for c in answer.citations}), bibtex
    entry = bibtex[bibtex.index("zygomorph2024") :]
    assert "title = {Zygomorph: 100\\% of" in entry and "Dana Ruiz" in entry and "year = {2024}" in entry, entry
