"""Offline answers composed from verbatim evidence sentences, each cited."""

from __future__ import annotations

from collections.abc import Sequence

from assistant.answering.table import NOT_STATED, classify
from assistant.models import Citation, Evidence, Sentence
from assistant.output.render import md_escape

LABEL = "*Extractive answer (no LLM configured): verbatim sentences from the abstracts, each cited.*"
TABLE_HEAD = ("Paper", "What it does", "Evaluated on", "Result")


def _quote(sentence: Sentence, n: int) -> str:
    return f"{md_escape(sentence.text)} [{n}]"


def compose_ask(evidence: Sequence[Evidence]) -> tuple[str, list[Citation]]:
    """Per paper: its title and its most relevant sentences, each followed by its source number."""
    lines = [LABEL, ""]
    citations = []
    for n, ev in enumerate(evidence, 1):
        lines.append(f"**{md_escape(ev.title)}** [{n}]")
        lines.extend(f"- {_quote(s, n)}" for s in ev.sentences)
        lines.append("")
        citations.append(Citation(n, ev.paper_id, ev.title, ev.sentences))
    return "\n".join(lines).rstrip() + "\n", citations


def compare_rows(
    evidence: Sequence[Evidence], sentences: Sequence[Sequence[Sentence]]
) -> list[tuple[Evidence, dict[str, Sentence | None]]]:
    """Each paper with its what / on / result sentences, taken from all of its abstract's sentences."""
    return [(ev, classify(all_sents)) for ev, all_sents in zip(evidence, sentences, strict=True)]


def table_dicts(rows: Sequence[tuple[Evidence, dict[str, Sentence | None]]]) -> list[dict[str, str]]:
    """Plain rows for display (`st.dataframe`) and JSON."""
    out = []
    for n, (ev, cells) in enumerate(rows, 1):
        row = {"#": f"[{n}]", TABLE_HEAD[0]: ev.title}
        for head, col in zip(TABLE_HEAD[1:], ("what", "on", "result"), strict=True):
            cell = cells[col]
            row[head] = cell.text if cell else NOT_STATED
        out.append(row)
    return out


def compose_compare(rows: Sequence[tuple[Evidence, dict[str, Sentence | None]]]) -> tuple[str, list[Citation]]:
    """A side-by-side Markdown table, then a short extractive synthesis."""
    lines = [LABEL, "", "| # | " + " | ".join(TABLE_HEAD) + " |", "|---|" + "---|" * len(TABLE_HEAD)]
    citations = []
    for n, (ev, cells) in enumerate(rows, 1):
        parts = [_quote(cell, n) if (cell := cells[c]) else NOT_STATED for c in ("what", "on", "result")]
        lines.append(f"| [{n}] | {md_escape(ev.title)} | " + " | ".join(parts) + " |")
        quotes = tuple(sorted((s for s in cells.values() if s), key=lambda s: s.start))
        citations.append(Citation(n, ev.paper_id, ev.title, quotes or ev.sentences))
    lines += ["", "**In short:**"]
    for n, (ev, cells) in enumerate(rows, 1):
        best = cells["result"] or cells["what"] or (ev.sentences[0] if ev.sentences else None)
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
            best = max(ev.sentences, key=lambda s: s.score) if ev.sentences else None
            if best:
                lines.append(f"- {md_escape(ev.title)}: {_quote(best, n)}")
                citations.append(Citation(n, ev.paper_id, ev.title, (best,)))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n", sorted(citations, key=lambda c: c.n)


def compose_refusal(closest: Sequence[Evidence], reason: str) -> str:
    """A clear refusal listing the closest papers found."""
    lines = [f"The collection does not answer this question ({md_escape(reason)})."]
    if closest:
        lines += ["", "Closest papers found:"]
        lines += [f"- {md_escape(ev.title)}" for ev in closest]
    return "\n".join(lines) + "\n"
