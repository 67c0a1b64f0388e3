"""The corpus page: what the collection holds, uploads that add papers, and removal of papers."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import streamlit as st

from assistant.errors import AssistantError
from assistant.output.render import md_escape, safe_url
from ingest.loaders import FORMATS
from ingest.uploads import MAX_LINES, load_upload, safe_label
from ui.components import render_map
from ui.resources import (
    Corpus,
    collection_map,
    corpus,
    flash,
    load_assistant,
    run_ingest,
    settings_or_error,
    show_flash,
    summary_message,
)

if TYPE_CHECKING:
    from assistant.config import Settings
    from assistant.index.store import ChunkStore

log = logging.getLogger("ui.corpus")
PAGE_SIZE = 25
FORMAT_HELP = (
    "page: a text page of title and abstract paragraphs; jsonl: one {title, abstract, ...} object a line; "
    "beir: a BEIR corpus.jsonl; arxiv: the arXiv metadata snapshot. 'detect' guesses from the first record."
)


def _metrics(facts: Corpus | None, store: ChunkStore | None) -> None:
    papers, chunks, model = st.columns(3)
    papers.metric("Papers", len(facts.papers) if facts else 0)
    chunks.metric("Chunks", facts.chunks if facts else 0)
    model.metric("Embedding model", facts.model if facts else "—")
    if store is not None:
        st.caption(f"Collection {md_escape(store.name)}")


def _upload(settings: Settings, store: ChunkStore | None) -> None:
    """A file uploader and an Ingest button; the file's name is only ever a label."""
    st.subheader("Add papers")
    st.caption(
        f"Page text, JSONL, BEIR or arXiv JSON; UTF-8 text up to {settings.upload_max_mb} MB and {MAX_LINES:,} lines. "
        "Papers already stored with the same id are updated, unchanged ones are skipped."
    )
    generation = st.session_state.setdefault("upload_generation", 0)
    # A new key after each ingest empties the uploader, so the same file is not ingested twice by accident.
    upload = st.file_uploader(
        "Corpus file", type=["txt", "jsonl", "json", "ndjson"], key=f"upload-{generation}", max_upload_size=settings.upload_max_mb
    )
    fmt = st.selectbox("Format", ("detect", *FORMATS), key="upload_format", help=FORMAT_HELP)
    clicked = st.button("Ingest", type="primary", disabled=upload is None, icon=":material/upload:", key="ingest_upload")
    if not clicked:
        # The last ingest's summary stays in view until the next one, searching and browsing included.
        if "last_ingest" in st.session_state:
            st.success(st.session_state["last_ingest"], icon=":material/check_circle:")
        return
    assert upload is not None
    label = safe_label(upload.name)
    try:
        report = load_upload(upload.getvalue(), upload.name, settings.upload_max_mb, None if fmt == "detect" else fmt)
        summary = run_ingest(report, store)
    except AssistantError as exc:
        st.error(f"Nothing was ingested: {md_escape(str(exc))}", icon=":material/error:")
        return
    except Exception as exc:  # a parser or store bug must not leave a traceback
        log.exception("upload failed")
        st.error(f"Nothing was ingested; unexpected {type(exc).__name__}: {md_escape(str(exc))}", icon=":material/error:")
        return
    st.session_state["upload_generation"] = generation + 1
    st.session_state["last_ingest"] = summary_message(summary, md_escape(label))
    st.rerun()


def _remove(settings: Settings, store: ChunkStore, paper: dict[str, Any]) -> None:
    from ingest.pipeline import remove_papers

    try:
        removed = remove_papers(settings, [str(paper["paper_id"])], store=store)
    except AssistantError as exc:
        st.error(f"Could not remove the paper: {md_escape(str(exc))}")
        return
    title = md_escape(str(paper.get("title", "")))
    flash(f"Removed {title}." if removed else f"{title} was already gone.", "success" if removed else "info")
    st.rerun()


def _browse(settings: Settings, facts: Corpus, store: ChunkStore) -> None:
    """Search by title; each paper shows its metadata and abstract, with a Remove button."""
    st.subheader("Browse papers")
    left, right = st.columns([4, 1])
    query = left.text_input("Title contains", key="corpus_query", placeholder="Filter the papers by title…").strip().casefold()
    matches = [m for m in facts.papers if query in str(m.get("title", "")).casefold()]
    pages = max(1, -(-len(matches) // PAGE_SIZE))
    # The key follows the page count, so a narrower search never keeps a page number past its end.
    page = right.number_input("Page", 1, pages, 1, key=f"corpus_page_{pages}") if pages > 1 else 1
    start = (int(page) - 1) * PAGE_SIZE
    shown = f"{start + 1 if matches else 0}–{min(len(matches), start + PAGE_SIZE)}"
    st.caption(f"{len(matches)} of {len(facts.papers)} papers match; showing {shown}.")
    for paper in matches[start : start + PAGE_SIZE]:
        with st.expander(md_escape(str(paper.get("title", "(untitled)")))):
            meta = [str(paper[k]) for k in ("year", "authors", "categories") if paper.get(k)]
            meta.append(f"id {paper.get('paper_id', '')}")
            st.caption(md_escape(" · ".join(meta)))
            st.markdown(md_escape(str(paper.get("abstract", ""))))
            url = safe_url(str(paper.get("url") or ""))
            if url:
                st.markdown(f"[Paper page]({url})")
            if st.button("Remove this paper", key=f"remove-{paper.get('paper_id')}", icon=":material/delete:"):
                _remove(settings, store, paper)


def _map(store: ChunkStore) -> None:
    """The 2-D map of the papers, coloured by theme, with each title on hover."""
    st.subheader("Map of the collection")
    st.caption(
        "Each point is a paper: the mean of its chunks' embeddings, projected onto their two main directions (PCA). "
        "Nearby papers are about similar things; colours are clusters, named by their most frequent title words."
    )
    try:
        points = collection_map(store)
    except AssistantError as exc:
        st.error(f"The map cannot be drawn: {md_escape(str(exc))}")
        return
    render_map(points, None, "corpus")


def corpus_page() -> None:
    """The corpus page."""
    st.title("Corpus")
    st.caption("Browse the papers the assistant answers from, add more from a file, or remove some.")
    show_flash()
    settings = settings_or_error()
    if settings is None:
        return
    assistant = load_assistant()
    store = assistant.store if assistant is not None else None
    try:
        facts = corpus(store) if store is not None else None
    except AssistantError as exc:
        st.error(f"The paper store cannot be read: {md_escape(str(exc))}")
        return
    _metrics(facts, store)
    with st.container(border=True):
        _upload(settings, store)
    if facts is not None and store is not None and facts.papers:
        _map(store)
        _browse(settings, facts, store)
