"""The chat page: sidebar options, the conversation, and one streamed answer per question."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

from assistant.errors import AssistantError
from assistant.models import Filters
from assistant.output.feedback import append_feedback
from assistant.output.render import md_escape
from ui.components import render_actions, render_answer, render_map, render_sources, safe_deltas
from ui.paper_map import answer_roles
from ui.resources import (
    LLM_HINT,
    collection_map,
    corpus,
    get_assistant,
    get_settings,
    load_assistant,
    sample_button,
    settings_or_error,
    show_flash,
    show_llm_problem,
    stats,
)

if TYPE_CHECKING:
    from assistant.answering.pipeline import Assistant
    from assistant.models import Answer

log = logging.getLogger("ui.chat")
MODES = ("auto", "ask", "compare", "summarise")
MODE_HELP = "auto picks from the question: compare for 'compare X and Y', summarise for 'what does the literature say', else ask."


@dataclass(frozen=True)
class Options:
    """What the sidebar chose for the next question."""

    mode: str | None
    top_k: int
    filters: Filters


def _messages() -> list[dict[str, Any]]:
    return st.session_state.setdefault("messages", [])


def _new_chat() -> None:
    st.session_state["messages"] = []


def sidebar(assistant: Assistant | None) -> Options:
    """Mode, number of papers, filters, what answers, collection stats and New chat."""
    settings = get_settings()
    filters = Filters()
    mode, top_k = "auto", settings.top_k
    with st.sidebar:
        st.button("New chat", on_click=_new_chat, icon=":material/add_comment:", width="stretch", key="new_chat")
        if assistant is not None:
            mode = st.selectbox("Mode", MODES, key="mode", help=MODE_HELP)
            top_k = st.slider("Papers to use", 1, 20, value=min(20, max(1, settings.top_k)), key="top_k")
            filters = _filters(assistant)
            st.divider()
            st.markdown("**Answers come from**")
            described = assistant.describe_llm()
            st.caption(md_escape(described))
            if assistant.llm is None:
                st.caption(LLM_HINT)
            st.markdown("**Collection**")
            numbers = stats(assistant)
            line = f"{numbers['papers']} papers · {numbers['chunks']} chunks · embedding model {numbers['embedding_model']}"
            st.caption(md_escape(f"{line} · collection {numbers['collection']}"))
    return Options(None if mode == "auto" else mode, top_k, filters)


def _filters(assistant: Assistant) -> Filters:
    """Filter widgets for the fields this corpus actually has."""
    facts = corpus(assistant.store)
    year_min = year_max = None
    author = category = None
    with st.expander("Filters", icon=":material/filter_list:"):
        if len(facts.years) > 1:
            low, high = st.slider("Years", facts.years[0], facts.years[-1], (facts.years[0], facts.years[-1]), key="years")
            # Only a narrowed range filters: a year bound would also drop every paper without a year.
            if (low, high) != (facts.years[0], facts.years[-1]):
                year_min, year_max = low, high
        if facts.has_authors:
            author = st.text_input("Author contains", key="author").strip() or None
        if facts.categories:
            picked = st.selectbox("Category", ("any", *facts.categories), key="category")
            category = None if picked == "any" else picked
        title = st.text_input("Title contains", key="title").strip() or None
    return Filters(year_min=year_min, year_max=year_max, author=author, category=category, title=title)


def _record_feedback(key: str) -> None:
    """Append the rating of one answer to the feedback file."""
    value = st.session_state.get(f"feedback-{key}")
    message = next((m for m in _messages() if m["id"] == key), None)
    if value is None or message is None or message.get("answer") is None:
        return
    answer = message["answer"]
    path = get_settings().feedback_path
    try:
        append_feedback(path, answer.question, answer.text, answer.citations, "up" if value == 1 else "down")
    except OSError as exc:
        reason = md_escape(exc.strerror or str(exc))
        st.session_state["flash"] = ("error", f"Could not save the feedback to {md_escape(str(path))}: {reason}")
        return
    st.toast("Thanks, your rating was saved.", icon=":material/thumb_up:")


def _answer_map(answer: Answer, key: str) -> None:
    """The collection's map with the papers this answer retrieved and cited drawn larger, in an expander."""
    if not answer.evidence:
        return
    try:
        points = collection_map(get_assistant().store)
    except AssistantError as exc:
        st.caption(f"The map of the collection cannot be drawn: {md_escape(str(exc))}")
        return
    with st.expander("Where these papers sit in the collection", icon=":material/scatter_plot:"):
        st.caption("Each point is a paper, placed by its abstract's meaning; the larger ones are this answer's sources.")
        render_map(points, answer_roles(answer), key)


def render_message(message: dict[str, Any]) -> None:
    """One past turn, re-rendered in full on every rerun."""
    with st.chat_message(message["role"]):
        if message["role"] == "user":
            st.markdown(md_escape(message["content"]))
            return
        answer = message.get("answer")
        if answer is not None:
            render_answer(answer, message["id"])
            _answer_map(answer, message["id"])
            if answer.text:
                render_actions(answer, message["id"], _record_feedback)
        else:
            st.error(message.get("error") or "No answer.", icon=":material/error:")
            render_sources(message.get("evidence", ()), (), message["id"])


def ask(assistant: Assistant, question: str, options: Options) -> None:
    """Stream one answer below the question and keep it in the history."""
    messages = _messages()
    history = [m["content"] for m in messages if m["role"] == "user"]
    messages.append({"id": uuid.uuid4().hex, "role": "user", "content": question})
    render_message(messages[-1])
    key = uuid.uuid4().hex
    # Kept in the history from the start: a click during streaming stops this run, and the turn then shows why it is empty.
    record: dict[str, Any] = {
        "id": key,
        "role": "assistant",
        "content": "",
        "answer": None,
        "evidence": (),
        "error": "The answer was interrupted before it finished; ask again.",
    }
    messages.append(record)
    with st.chat_message("assistant"):
        # Two places: the live view is emptied when the answer is done, and the final view goes into a fresh
        # container, because a block that replaces another keeps the old one's extra children on screen.
        live = st.empty()
        final = st.container()
        try:
            with live.container(), st.spinner("Searching the papers…"):
                stream = assistant.stream(
                    question, mode=options.mode, history=history, filters=options.filters, top_k=options.top_k
                )
            # The evidence is known before generation, so a failure while writing still leaves the sources.
            record["evidence"] = stream.evidence
            with live.container():
                st.caption(f"Found {len(stream.evidence)} papers; writing the answer…")
                text = st.container()
                render_sources(stream.evidence, (), f"live-{key}")
                with text:
                    st.write_stream(safe_deltas(stream))
            answer = stream.result
        except AssistantError as exc:
            record["error"] = f"The question could not be answered: {md_escape(str(exc))}"
        except Exception as exc:  # a bug must not leave a traceback in the chat
            log.exception("answering failed")
            record["error"] = f"Unexpected error while answering ({type(exc).__name__}): {md_escape(str(exc))}"
        else:
            record.update(answer=answer, content=answer.text, error=None)
        live.empty()
        with final:
            _show_final(record, key)


def _show_final(record: dict[str, Any], key: str) -> None:
    """The finished turn: the answer with its actions, or the error with the sources found."""
    if record["answer"] is not None:
        render_answer(record["answer"], key)
        _answer_map(record["answer"], key)
        if record["answer"].text:
            render_actions(record["answer"], key, _record_feedback)
    else:
        st.error(record["error"], icon=":material/error:")
        render_sources(record["evidence"], (), key)


def chat_page() -> None:
    """The chat page."""
    st.title("Paper assistant")
    st.caption("Ask about the papers in the collection. Every claim is cited to the abstract sentences it rests on.")
    show_flash()
    if settings_or_error() is None:
        return
    assistant = load_assistant()
    try:
        options = sidebar(assistant)
        papers = len(corpus(assistant.store).papers) if assistant is not None else 0
    except AssistantError as exc:
        st.error(f"The paper store cannot be read: {md_escape(str(exc))}")
        return
    if assistant is None:
        return
    show_llm_problem(get_settings())
    if papers == 0:
        st.error(
            "The collection is empty: run ingest first (`make ingest`), upload a corpus on the Corpus page, or load the sample."
        )
        sample_button("empty")
        return
    for message in _messages():
        render_message(message)
    question = st.chat_input("Ask about the papers…", key="question")
    if question and question.strip():
        ask(assistant, question.strip(), options)
