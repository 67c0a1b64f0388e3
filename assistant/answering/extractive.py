"""Offline answers composed from verbatim evidence sentences, each cited."""

from __future__ import annotations

from collections.abc import Sequence

from assistant.answering.table import NOT_STATED
from assistant.models import Citation, Evidence, Sentence
from assistant.output.render import md_escape

LABEL = "*Extractive answer (no LLM configured): verbatim sentences from the abstracts, each cited.*"
PAPER = "Paper"


def _quote(sentence: Sentence, n: int) -> str:
    return f"{md_escape(sentence.text)} [{n}]"


def _related_line(related: Sequence[str]) -> list[str]:
    return (
        [
            "",
            "_Related, not cited (retrieved, but no sentence answers the question):_ " + "; ".join(md_escape(r) for r in related),
        ]
        if related
        else []
    )


def compose_ask(evidence: Sequence[Evidence], related: Sequence[str] = ()) -> tuple[str, list[Citation]]:
    """The papers that answer, best first: each title, then its best sentence and the ones that support it, cited."""
    lines = [LABEL, ""]
    citations = []
    for n, ev in enumerate(evidence, 1):
        lines.append(f"**{md_escape(ev.title)}** [{n}]")
        lines.extend(f"- {_quote(s, n)}" for s in ev.sentences)
        lines.append("")
        citations.append(Citation(n, ev.paper_id, ev.title, ev.sentences))
    lines += _related_line(related)
    return "\n".join(lines).rstrip() + "\n", citations


def table_dicts(rows: Sequence[tuple[Evidence, dict[str, Sentence | None]]]) -> list[dict[str, str]]:
    """Plain rows for display (`st.dataframe`) and JSON: the paper, then one cell per column."""
    out = []
    for n, (ev, cells) in enumerate(rows, 1):
        row = {"#": f"[{n}]", PAPER: ev.title}
        row.update({head: cell.text if cell else NOT_STATED for head, cell in cells.items()})
        out.append(row)
    return out


def compose_compare(
    rows: Sequence[tuple[Evidence, dict[str, Sentence | None]]], missing: Sequence[str] = ()
) -> tuple[str, list[Citation]]:
    """A side-by-side Markdown table of the named papers, the names no paper matches, then a short synthesis."""
    heads = list(rows[0][1]) if rows else []
    lines = [LABEL]
    lines += ["", *(f"No paper in the collection describes {md_escape(name)}." for name in missing)] if missing else []
    if rows:
        lines += ["", "| # | " + " | ".join([PAPER, *map(md_escape, heads)]) + " |", "|---|" + "---|" * (len(heads) + 1)]
    citations = []
    for n, (ev, cells) in enumerate(rows, 1):
        parts = [_quote(cell, n) if (cell := cells[h]) else NOT_STATED for h in heads]
        lines.append(f"| [{n}] | {md_escape(ev.title)} | " + " | ".join(parts) + " |")
        # One sentence can answer several columns; the sources list it once.
        quotes = tuple(sorted({s.start: s for s in cells.values() if s}.values(), key=lambda s: s.start))
        citations.append(Citation(n, ev.paper_id, ev.title, quotes or ev.sentences[:1]))
    if rows:
        lines += ["", "**In short:**"]
    for n, (ev, cells) in enumerate(rows, 1):
        best = max((s for s in cells.values() if s), key=lambda s: s.score, default=None) or (
            ev.sentences[0] if ev.sentences else None
        )
        if best:
            lines.append(f"- {md_escape(ev.title)}: {_quote(best, n)}")
    return "\n".join(lines).rstrip() + "\n", citations


def compose_summary(
    evidence: Sequence[Evidence], themes: Sequence[tuple[str, list[int]]], coverage: str
) -> tuple[str, list[Citation]]:
    """Themes with one cited line per paper, coverage first."""
    lines = [LABEL, "", f"_{md_escape(coverage)}_", ""]
    citations = []
    for label, members in themes:
        lines.append(f"**{md_escape(label)}**")
        for i in members:
            ev, n = evidence[i], i + 1
            best = ev.sentences[0] if ev.sentences else None  # its lead quote
            if best:
                lines.append(f"- {md_escape(ev.title)}: {_quote(best, n)}")
                citations.append(Citation(n, ev.paper_id, ev.title, (best,)))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n", sorted(citations, key=lambda c: c.n)


def compose_refusal(closest: Sequence[Evidence], reason: str) -> str:
    """A clear refusal listing the closest papers, the first with what it does state (uncited: it does not answer)."""
    lines = [f"The collection does not answer this question ({md_escape(reason)})."]
    if closest:
        lines += ["", "Closest papers found:"]
        for i, ev in enumerate(closest):
            stated = f' (what it does state: "{md_escape(ev.sentences[0].text)}")' if i == 0 and ev.sentences else ""
            lines.append(f"- {md_escape(ev.title)}{stated}")
    return "\n".join(lines) + "\n"
