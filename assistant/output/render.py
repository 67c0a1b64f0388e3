"""Rendering answers as safe Markdown and BibTeX; source text is always escaped."""

from __future__ import annotations

import re
from urllib.parse import quote

from assistant.models import Answer, Evidence
from assistant.output.sanitise import visible

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~$!])")
_BIB_SPECIAL = re.compile(r"[\\{}%&$#_^~]")
# Braces are written as commands in braces: BibTeX counts "\{" when it balances a field's braces, so "\{" never closes.
_BIB_ESCAPES = {
    "\\": r"{\textbackslash}", "{": r"{\textbraceleft}", "}": r"{\textbraceright}", "^": r"{\textasciicircum}",
    "~": r"{\textasciitilde}", "%": r"\%", "&": r"\&", "$": r"\$", "#": r"\#", "_": r"\_",
}  # fmt: skip


def md_escape(text: str) -> str:
    """Escape Markdown, HTML and LaTeX delimiters so source text shows literally and stays inert; controls made visible."""
    return _MD_SPECIAL.sub(r"\\\1", visible(text)).replace("\n", " ")


def safe_url(url: str | None) -> str | None:
    """An http(s) URL with the characters that could break out of a Markdown link encoded, or None."""
    if not url or not url.strip().lower().startswith(("http://", "https://")):
        return None
    return quote(url.strip(), safe=":/?#@!$&'*+,;=%~-._")


_LINK_TARGET = re.compile(r"\]\(\s*(?!https?:)")


def inert_markdown(text: str) -> str:
    """Generated Markdown kept as Markdown but made inert for any renderer: no images (they fetch URLs), no raw HTML,
    no link or autolink to anything but http(s) (a `javascript:` target becomes text), and no control characters."""
    text = visible(text).replace("<", "&lt;").replace("![", "!\\[")  # raw HTML and autolinks become text
    text = _LINK_TARGET.sub("]\\(", text)
    # Every "]:" becomes "]\\:", so no link reference definition survives (`[1]: smb://...` would link every [1]).
    # CommonMark accepts definitions in block quotes, list items, nested containers and after lazy continuation lines,
    # but each ends its label with "]" right before ":"; escaping that pair catches them all. Inside code the backslash
    # shows, a small price: finding code exactly as a renderer would is what let definitions through before.
    return text.replace("]:", "]\\:")


UNSUPPORTED_MARK = " ⚠ *(not supported by the cited sources)*"


def mark_unsupported(text: str, spans: tuple[tuple[int, int], ...], mark: str = UNSUPPORTED_MARK) -> str:
    """The answer with `mark` after each unsupported claim, so it is flagged where it is made."""
    for start, end in sorted(spans, reverse=True):
        if 0 <= start < end <= len(text):
            end -= len(text[start:end]) - len(text[start:end].rstrip())
            text = text[:end] + mark + text[end:]
    return text


def bib_escape(text: str) -> str:
    """A field value BibTeX reads back as `text`: specials as LaTeX commands, braces always balanced, one line."""
    return _BIB_SPECIAL.sub(lambda m: _BIB_ESCAPES[m.group()], " ".join(visible(text).split()))


_NAME_SPLITS = re.compile(r"\band\b|,.*,", re.IGNORECASE)


def bib_name(name: str) -> str:
    """One author for an `author` field: braced whole when BibTeX would split it (an "and") or refuse it (two commas)."""
    escaped = bib_escape(name)
    return f"{{{escaped}}}" if _NAME_SPLITS.search(name) else escaped


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
    # The answer text may quote abstracts (an LLM copies what it reads), so it is made inert like the UI's.
    body = mark_unsupported(answer.text, answer.unsupported_spans)
    lines = [f"# {md_escape(answer.question)}", "", inert_markdown(body.strip()), ""]
    if answer.error:  # an export must not pass a cut or failed answer off as whole
        lines += [f"**{'Answer incomplete' if answer.text else 'No answer'}:** {md_escape(answer.error)}", ""]
    if answer.unsupported:
        lines += ["**Not supported by the cited sources:**", *[f"- {md_escape(s)}" for s in answer.unsupported], ""]
    if answer.fallback:  # verbatim evidence composed by the extractive path, already escaped there
        lines += [f"**{md_escape(answer.fallback.note)}**", "", inert_markdown(answer.fallback.text.strip()), ""]
    lines += ["## References", ""]
    quotes = {c.n: c.quotes for c in answer.citations}
    for n, ev in references(answer):
        meta = ", ".join(x for x in (str(ev.year) if ev.year else "", "; ".join(ev.authors)) if x)
        link = safe_url(ev.url)
        url = f" <{link}>" if link else ""
        lines.append(f"{n}. {md_escape(ev.title)}{f' ({md_escape(meta)})' if meta else ''}{url}")
        for q in quotes.get(n, ()):
            lines.append(f"   > {md_escape(q.text)} (characters {q.start}-{q.end})")
    return visible("\n".join(lines).rstrip() + "\n")


def to_bibtex(answer: Answer) -> str:
    """BibTeX entries for the cited papers."""
    entries = []
    for n, ev in references(answer):
        fields = [f"  title = {{{bib_escape(ev.title)}}}"]
        if ev.authors:
            fields.append(f"  author = {{{' and '.join(bib_name(a) for a in ev.authors)}}}")
        if ev.year:
            fields.append(f"  year = {{{ev.year}}}")
        if link := safe_url(ev.url):  # reference managers turn url fields into live links
            fields.append(f"  url = {{{bib_escape(link)}}}")
        fields.append(f"  note = {{Source [{n}], paper id {bib_escape(ev.paper_id)}}}")
        entries.append("@misc{" + bib_key(ev, n) + ",\n" + ",\n".join(fields) + "\n}")
    return visible("\n\n".join(entries) + "\n")
