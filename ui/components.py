"""Rendering of answers and their numbered sources; every piece of source text is escaped before display."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import streamlit as st

from assistant.models import Answer, Citation, Evidence, Sentence
from assistant.output.render import mark_unsupported, md_escape, safe_url, to_bibtex, to_markdown
from ui.paper_map import MapPoint, map_spec

# A stronger tint than the palette's pale orange, readable in the light and the dark theme.
HIGHLIGHT = '"rgba(255, 189, 46, 0.35)"'
# Streamlit's coloured-text directive: the claim stays as written, with a visible flag after it.
UNSUPPORTED_BADGE = " :orange-badge[⚠ not supported by the cited sources]"
CARDS_PER_ROW = 3
LLM_FIX = (
    "Check ASSISTANT_LLM_BASE_URL, ASSISTANT_LLM_MODEL and ASSISTANT_LLM_API_KEY in .env (or unset "
    "ASSISTANT_LLM_BASE_URL for extractive answers)."
)


# -- safe text ----------------------------------------------------------------------------------


def safe_markdown(text: str) -> str:
    """LLM Markdown made inert: images would fetch remote URLs, so `![` loses its meaning.

    Raw HTML needs nothing here: st.markdown without unsafe_allow_html shows tags as text,
    and its renderer drops javascript: link targets.
    """
    return text.replace("![", "!\\[")


def safe_deltas(deltas: Iterable[str]) -> Iterator[str]:
    """Streamed deltas made inert like safe_markdown, holding back a trailing '!' so a split '![' is caught."""
    held = ""
    for delta in deltas:
        text = held + delta
        held = "!" if text.endswith("!") else ""
        text = text[:-1] if held else text
        if text:
            yield safe_markdown(text)
    if held:
        yield held


def merge_spans(spans: Iterable[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """Spans clipped to the text, sorted and with overlaps merged."""
    out: list[tuple[int, int]] = []
    for start, end in sorted((max(0, s), min(length, e)) for s, e in spans):
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def highlighted_markdown(abstract: str, spans: Iterable[tuple[int, int]]) -> str:
    """The abstract as escaped Markdown with the spans marked by Streamlit's background directive."""
    parts: list[str] = []
    at = 0
    for start, end in merge_spans(spans, len(abstract)):
        parts.append(md_escape(abstract[at:start]))
        # md_escape escapes every bracket, so only this directive can open or close a highlight.
        parts.append(f":color[{md_escape(abstract[start:end])}]{{background={HIGHLIGHT}}}")
        at = end
    parts.append(md_escape(abstract[at:]))
    return "".join(parts)


# -- answers ------------------------------------------------------------------------------------


def source_meta(n: int, ev: Evidence, quotes: Sequence[Sentence]) -> str:
    """One caption line: relevance, year, authors, whether it is cited."""
    parts = [f"relevance {ev.score:.2f}"]
    if ev.year:
        parts.append(str(ev.year))
    if ev.authors:
        parts.append(", ".join(ev.authors[:3]) + (" et al." if len(ev.authors) > 3 else ""))
    parts.append(f"cited: {len(quotes)} sentence(s) highlighted" if quotes else "not cited in the answer")
    return md_escape(" · ".join(parts))


def render_sources(evidence: Sequence[Evidence], citations: Sequence[Citation], key: str) -> None:
    """The numbered source list: title and relevance, then the abstract with the cited sentences highlighted."""
    if not evidence:
        return
    quotes = {c.n: c.quotes for c in citations}
    first = min(quotes) if quotes else 1
    with st.container(key=f"sources-{key}"):
        st.markdown(f"**Sources** ({len(evidence)})")
        for n, ev in enumerate(evidence, 1):
            cited = quotes.get(n, ())
            label = f"**[{n}]** {md_escape(ev.title)} · relevance {ev.score:.2f}"
            with st.expander(label, expanded=n == first, icon=":material/format_quote:" if cited else ":material/article:"):
                st.caption(source_meta(n, ev, cited))
                st.markdown(highlighted_markdown(ev.abstract, [(q.start, q.end) for q in cited]))
                url = safe_url(ev.url)
                if url:
                    st.markdown(f"[Paper page]({url})")


def answer_caption(answer: Answer) -> str:
    """Coverage, mode, where the answer came from and how long each stage took."""
    t = answer.timings
    parts = [answer.coverage] if answer.coverage else []
    parts.append(f"mode: {answer.mode}")
    parts.append("extractive, no LLM" if answer.extractive else "written by the LLM")
    parts.append(f"retrieval {t.retrieval:.2f} s")
    if t.first_token is not None:
        parts.append(f"first token {t.first_token:.2f} s")
    parts.append(f"total {t.total:.2f} s")
    if answer.usage.prompt_tokens or answer.usage.completion_tokens:
        parts.append(f"{answer.usage.prompt_tokens} prompt + {answer.usage.completion_tokens} answer tokens")
    return md_escape(" · ".join(parts))


def render_answer(answer: Answer, key: str) -> None:
    """Answer text (or refusal, or error), unsupported claims, comparison table, caption and sources."""
    if answer.refused:
        body = answer.text if answer.extractive or not answer.text else safe_markdown(answer.text)
        st.warning(body or "The collection does not answer this question.", icon=":material/block:")
    elif answer.error and not answer.text:
        st.error(
            f"**The LLM could not answer.** {md_escape(answer.error)}\n\n{LLM_FIX} "
            "The papers found for the question are listed below.",
            icon=":material/cloud_off:",
        )
    else:
        text = safe_markdown(mark_unsupported(answer.text, answer.unsupported_spans, UNSUPPORTED_BADGE))
        before, after = split_table(text) if answer.table else (text, "")
        st.markdown(before)
        if answer.table:
            render_comparison(answer.table, key)
        if after.strip():
            st.markdown(after)
        if answer.error:
            st.error(f"**The answer stopped early.** {md_escape(answer.error)}\n\n{LLM_FIX}", icon=":material/cloud_off:")
    if answer.unsupported:
        lines = "\n".join(f"- {md_escape(s)}" for s in answer.unsupported)
        st.warning(f"**Not supported by the cited sources:**\n{lines}", icon=":material/report:")
    if answer.fallback:  # most of the generated answer is unsupported: the reader gets what the sources say
        st.info(md_escape(answer.fallback.note), icon=":material/fact_check:")
        st.markdown(safe_markdown(answer.fallback.text))
    if answer.dropped_citations:
        st.caption(f"Dropped citations to sources that were never given: {', '.join(map(str, answer.dropped_citations))}")
    st.caption(answer_caption(answer))
    if answer.left_out:
        st.caption("Relevant but not cited: " + "; ".join(md_escape(t) for t in answer.left_out))
    render_sources(answer.evidence, answer.citations, key)


def split_table(text: str) -> tuple[str, str]:
    """The Markdown before and after its table rows (lines starting with `|`); the cards take the table's place.

    Source text inside the answer is escaped, so an abstract's own `|` never starts a line.
    """
    lines = text.split("\n")
    rows = [i for i, line in enumerate(lines) if line.lstrip().startswith("|")]
    if not rows:
        return text, ""
    return "\n".join(lines[: rows[0]]), "\n".join(lines[rows[-1] + 1 :])


def render_comparison(table: Sequence[Mapping[str, str]], key: str) -> None:
    """A comparison as one card per paper, side by side across the page's width (three to a row).

    Cards rather than a five-column table: each column of a table gets a fifth of the chat's width, which wraps
    every sentence to a few words a line; a card gives each paper's sentences a third of the width and its full title.
    """
    per_row = min(CARDS_PER_ROW, len(table))
    with st.container(key=f"comparison-{key}"):
        for first in range(0, len(table), per_row):
            for column, row in zip(st.columns(per_row), table[first : first + per_row], strict=False):
                with column.container(border=True):
                    fields = dict(row)
                    number, title = fields.pop("#", ""), fields.pop("Paper", "")
                    st.markdown(f"**{md_escape(number)} {md_escape(title)}**")
                    for head, value in fields.items():
                        st.caption(md_escape(head))
                        st.markdown(md_escape(value))


def render_map(points: Sequence[MapPoint], roles: Mapping[str, str] | None, key: str) -> None:
    """The map of the collection; with `roles`, the papers an answer retrieved and cited stand out."""
    if points:
        st.vega_lite_chart(spec=map_spec(tuple(points), roles), width="stretch", key=f"map-{key}")


def render_actions(answer: Answer, key: str, on_feedback: Callable[[str], None]) -> None:
    """Download buttons (Markdown with references, BibTeX) and the thumbs feedback widget."""
    row = st.container(horizontal=True, vertical_alignment="center", key=f"actions-{key}")
    row.download_button(
        "Markdown",
        to_markdown(answer),
        file_name="answer.md",
        mime="text/markdown",
        key=f"md-{key}",
        on_click="ignore",
        icon=":material/download:",
    )
    row.download_button(
        "BibTeX",
        to_bibtex(answer),
        file_name="references.bib",
        mime="application/x-bibtex",
        key=f"bib-{key}",
        on_click="ignore",
        icon=":material/download:",
    )
    with row:
        st.feedback("thumbs", key=f"feedback-{key}", on_change=on_feedback, args=(key,))
