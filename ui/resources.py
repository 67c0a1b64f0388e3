"""Resources shared by every session (settings, embedder, assistant) and the corpus facts derived from the store."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st
from pydantic import ValidationError

from assistant import Settings, build_assistant, check_endpoint
from assistant.errors import AssistantError, LLMError, StoreError
from assistant.output.render import md_escape
from assistant.runtime import prepare_runtime, store_label
from ui.components import LLM_FIX

if TYPE_CHECKING:
    from assistant.answering.pipeline import Assistant
    from assistant.index.embed import Embedder
    from assistant.index.store import ChunkStore
    from ingest.loaders import LoadReport
    from ingest.sync import SyncSummary
    from ui.paper_map import MapPoint

log = logging.getLogger("ui")
CHECK_EVERY_S = 60  # a failed or passed LLM check is trusted this long before the endpoint is asked again
WARM_UP_QUESTION = "Which papers propose a new method, and how is it evaluated?"
LLM_HINT = "Set ASSISTANT_LLM_BASE_URL and ASSISTANT_LLM_MODEL (and ASSISTANT_LLM_API_KEY if needed) in .env for written answers."


@st.cache_resource(show_spinner=False)
def get_settings() -> Settings:
    """Settings from the environment and .env, read once per server process."""
    settings = Settings()
    prepare_runtime(settings)
    return settings


@st.cache_resource(show_spinner="Loading the embedding model…")
def get_embedder() -> Embedder:
    """One embedder for answering and for ingesting uploads, so the model is loaded once."""
    from assistant.index.embed import build_embedder

    return build_embedder(get_settings())


@st.cache_resource(show_spinner="Loading the embedding model, the indexes and the map of the collection…")
def get_assistant() -> Assistant:
    """The assistant over the configured collection, ready to answer; a failure is not cached, so the next run retries.

    One question is planned without generation: that loads the embedding model, the BM25 index and the sentence
    vectors now, while the page shows a spinner, instead of on the first question.
    """
    assistant = build_assistant(get_settings(), embedder=get_embedder())
    assistant.plan(WARM_UP_QUESTION, mode="ask")
    collection_map(assistant.store)
    return assistant


@st.cache_resource(show_spinner="Checking the LLM endpoint…", ttl=CHECK_EVERY_S)
def _llm_problem(base_url: str, model: str) -> str | None:
    try:
        check_endpoint(get_settings())
    except LLMError as exc:
        return str(exc)
    return None


def show_llm_problem(settings: Settings) -> None:
    """Say at once, before any question, when the configured LLM endpoint is unreachable or lacks the model.

    Questions stay open: each answer then shows the LLM's error with the papers found, and an endpoint that comes
    up later is used without a restart.
    """
    if not settings.llm_base_url:
        return
    problem = _llm_problem(settings.llm_base_url, settings.llm_model)
    if problem is None:
        return
    st.error(
        f"**The LLM endpoint cannot be used**, so answers will only list the papers found: {md_escape(problem)}. {LLM_FIX}",
        icon=":material/cloud_off:",
    )
    if st.button("Check again", key="retry_llm", icon=":material/refresh:"):
        _llm_problem.clear()
        st.rerun()


def settings_or_error() -> Settings | None:
    """The settings, or None after explaining which value in the environment or .env is wrong."""
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(f"ASSISTANT_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        st.error(f"A setting in the environment or .env is invalid: {problems}. Fix it and reload the page.")
        return None


def load_assistant() -> Assistant | None:
    """The cached assistant, or None after showing why it cannot start and how to fix it."""
    settings = settings_or_error()
    if settings is None:
        return None
    try:
        return get_assistant()
    except StoreError as exc:
        if "does not exist" in str(exc):
            st.error(
                f"There is no collection at {store_label(settings)} yet: run ingest first (`make ingest`, or "
                "`python -m ingest FILE`), upload a corpus on the Corpus page, or load the bundled sample here."
            )
            sample_button("missing")
        else:
            st.error(f"The paper store cannot be used: {exc}")
            st.button("Retry", key="retry_store", icon=":material/refresh:")
        return None
    except AssistantError as exc:
        st.error(f"The assistant could not start: {md_escape(str(exc))}")
        st.button("Retry", key="retry_build", icon=":material/refresh:")
        return None


# -- corpus facts, recomputed only when the collection changes ------------------------------------


@dataclass(frozen=True)
class Corpus:
    """The stored papers' metadata and the filter values they offer."""

    papers: tuple[dict[str, Any], ...]
    chunks: int
    model: str
    years: tuple[int, ...]
    has_authors: bool
    categories: tuple[str, ...]


def store_key(store: ChunkStore) -> tuple[str, int, int]:
    """Changes whenever the collection is written: its name, revision and chunk count."""
    return (store.name, store.revision, store.count())


@st.cache_resource(show_spinner="Reading the collection…", max_entries=4)
def _corpus(_store: ChunkStore, key: tuple[str, int, int]) -> Corpus:
    # cache_resource, not cache_data: the metadata of a large corpus is not copied on every rerun.
    papers = tuple(_store.papers())
    years = sorted({y for m in papers if isinstance(y := m.get("year"), int)})
    cats = sorted({c for m in papers for c in str(m.get("categories", "")).split() if c})
    return Corpus(papers, key[2], _store.model, tuple(years), any(m.get("authors") for m in papers), tuple(cats))


def corpus(store: ChunkStore) -> Corpus:
    """The collection's papers and facets, cached per revision."""
    return _corpus(store, store_key(store))


@st.cache_resource(show_spinner=False, max_entries=4)
def _stats(_assistant: Assistant, key: tuple[str, int, int]) -> dict[str, Any]:
    return _assistant.stats()


def stats(assistant: Assistant) -> dict[str, Any]:
    """Assistant.stats() (papers, chunks, embedding model), cached per revision of the collection."""
    return _stats(assistant, store_key(assistant.store))


@st.cache_resource(show_spinner="Drawing the map of the collection…", max_entries=4)
def _paper_map(_store: ChunkStore, key: tuple[str, int, int]) -> tuple[MapPoint, ...]:
    from ui.paper_map import paper_map

    return paper_map(_store)


def collection_map(store: ChunkStore) -> tuple[MapPoint, ...]:
    """Every paper's place on the 2-D map, cached per revision of the collection."""
    return _paper_map(store, store_key(store))


# -- ingesting ------------------------------------------------------------------------------------


def flash(message: str, kind: str = "success") -> None:
    """Keep a message to show after the next rerun."""
    st.session_state["flash"] = (kind, message)


def show_flash() -> None:
    """Show (once) a message kept before a rerun."""
    kept = st.session_state.pop("flash", None)
    if kept:
        kind, message = kept
        getattr(st, kind, st.info)(message)


def run_ingest(report: LoadReport, store: ChunkStore | None = None) -> SyncSummary:
    """Ingest loaded papers with a progress bar; the caller reruns the page afterwards."""
    from ingest.pipeline import IngestOptions, ingest_report

    bar = st.progress(0.0, text="Chunking and embedding…")

    def progress(done: int, total: int) -> None:
        bar.progress(min(1.0, done / total) if total else 1.0, text=f"Embedding chunks: {done} of {total}")

    summary = ingest_report(get_settings(), report, IngestOptions(progress=progress), embedder=get_embedder(), store=store)
    bar.empty()
    return summary


def summary_message(summary: SyncSummary, what: str) -> str:
    """The ingest summary line plus the first few skipped-record warnings, as safe Markdown."""
    lines = [f"Ingested {what}: {summary.line()}"]
    if summary.warnings:
        lines.append(f"{len(summary.warnings)} record(s) skipped, for example:")
        lines += [f"- {md_escape(w)}" for w in summary.warnings[:5]]
    return "\n".join(lines)


def sample_button(where: str) -> None:
    """A button that ingests the bundled sample corpus (72 abstracts) into the configured collection."""
    label = "Ingest the bundled sample (72 abstracts)"
    if not st.button(label, key=f"sample_{where}", type="primary", icon=":material/download:"):
        return
    from ingest.loaders import load_path, sample_corpus_path

    try:
        summary = run_ingest(load_path(sample_corpus_path()))
    except AssistantError as exc:
        st.error(f"Ingesting the sample failed: {exc}")
        return
    flash(summary_message(summary, "the bundled sample"))
    st.rerun()


def clear_caches() -> None:
    """Forget the cached settings, assistant, corpus facets and stats (the embedder stays); tests start each app fresh."""
    get_settings.clear()
    get_assistant.clear()
    _corpus.clear()
    _stats.clear()
    _paper_map.clear()
    _llm_problem.clear()
