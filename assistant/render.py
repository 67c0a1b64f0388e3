"""Rendering answers as safe Markdown and BibTeX; source text is always escaped."""

from __future__ import annotations

import re

from assistant.models import Answer, Evidence

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~$!])")
_BIB_SPECIAL = re.compile(r"([\\{}%&$#_^~])")


def md_escape(text: str) -> str:
    """Escape Markdown, HTML and LaTeX delimiters so source text shows literally and stays inert."""
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def bib_escape(text: str) -> str:
    """Escape BibTeX/LaTeX specials in a field value."""
    return _BIB_SPECIAL.sub(lambda m: "\\" + m.group(1) if m.group(1) not in "\\^~" else " ", text)


def bib_key(evidence: Evidence, n: int) -> str:
    """A citation key made of safe characters only."""
    word = re.sub(r"[^A-Za-z0-9]", "", (evidence.title.split() or ["paper"])[0]).lower() or "paper"
    return f"{word}{evidence.year or ''}_{n}"


def references(answer: Answer) -> list[tuple[int, Evidence]]:
    """Cited sources (or all sources when nothing was cited), with their numbers."""
    cited = {c.n for c in answer.citations}
    numbered = list(enumerate(answer.evidence, 1))
    return [(n, e) for n, e in numbered if n in cited] or numbered


def to_markdown(answer: Answer) -> str:
    """The answer followed by its numbered reference list with quoted sentences."""
    lines = [f"# {md_escape(answer.question)}", "", answer.text.strip(), ""]
    if answer.unsupported:
        lines += ["**Not supported by the cited sources:**", *[f"- {md_escape(s)}" for s in answer.unsupported], ""]
    lines += ["## References", ""]
    quotes = {c.n: c.quotes for c in answer.citations}
    for n, ev in references(answer):
        meta = ", ".join(x for x in (str(ev.year) if ev.year else "", "; ".join(ev.authors)) if x)
        url = f" <{md_escape(ev.url)}>" if ev.url else ""
        lines.append(f"{n}. {md_escape(ev.title)}{f' ({md_escape(meta)})' if meta else ''}{url}")
        for q in quotes.get(n, ()):
            lines.append(f"   > {md_escape(q.text)} (characters {q.start}-{q.end})")
    return "\n".join(lines).rstrip() + "\n"


def to_bibtex(answer: Answer) -> str:
    """BibTeX entries for the cited papers."""
    entries = []
    for n, ev in references(answer):
        fields = [f"  title = {{{bib_escape(ev.title)}}}"]
        if ev.authors:
            fields.append(f"  author = {{{bib_escape(' and '.join(ev.authors))}}}")
        if ev.year:
            fields.append(f"  year = {{{ev.year}}}")
        if ev.url:
            fields.append(f"  url = {{{bib_escape(ev.url)}}}")
        fields.append(f"  note = {{Source [{n}], paper id {bib_escape(ev.paper_id)}}}")
        entries.append("@misc{" + bib_key(ev, n) + ",\n" + ",\n".join(fields) + "\n}")
    return "\n\n".join(entries) + "\n"
