"""The daily-papers page: header paragraphs, then title and abstract paragraphs in turn.

Nothing in the format marks which paragraph is a title, so a blank line inside an abstract shifts every later
pair. The reader checks that each pair still reads as a title and an abstract, and stops at the first that does
not: a shifted page would store halves of abstracts as titles, and `--prune` would delete the real papers.
"""

from __future__ import annotations

import re

from assistant.errors import InputError
from assistant.models import Paper
from assistant.text.sentences import sentence_spans
from ingest.records import Collector, clean, normalise, title_id

# Paragraphs a daily-papers page shows before the first paper.
_PAGE_HEADER = re.compile(
    r"^(new|subscribe|get trending papers.*|by\s*ak\b.*|"
    r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(,\s*\d{4})?)$",
    re.IGNORECASE,
)
# arXiv titles stay under about 250 characters; real abstracts run past 500 and end a sentence or a link.
TITLE_MAX_CHARS = 300
ABSTRACT_MIN_CHARS = 200
_ENDS_SENTENCE = re.compile(r"(?:[.!?][\"')\]]*|https?://\S+)$")


def _paragraphs(lines: list[str]) -> list[tuple[int, str]]:
    paragraphs: list[tuple[int, str]] = []
    start, buf = 0, list[str]()
    for i, line in enumerate(lines, 1):
        if line.strip():
            if not buf:
                start = i
            buf.append(line)
        elif buf:
            paragraphs.append((start, " ".join(buf)))
            buf = []
    if buf:
        paragraphs.append((start, " ".join(buf)))
    return paragraphs


def title_problem(title: str) -> str | None:
    """Why a paragraph in a title's place reads as part of an abstract, or None."""
    if len(title) > TITLE_MAX_CHARS:
        return f"a title of paragraph length ({len(title)} characters)"
    if not re.search(r"[^\W\d_]", title) or re.search(r"https?://", title):
        return f"a title without words, or holding a link ({title[:60]!r})"
    if len(title) > 120 and _ENDS_SENTENCE.search(title) and len(sentence_spans(title)) >= 2:
        return "a title made of several sentences"
    return None


def abstract_problem(abstract: str, title: str) -> str | None:
    """Why a paragraph in an abstract's place reads as a title (after a title that reads as an abstract's end)."""
    if len(abstract) >= ABSTRACT_MIN_CHARS:
        return None
    if not _ENDS_SENTENCE.search(abstract) or title.endswith(".") or title[:1].islower():
        return f"an abstract that reads like a title ({abstract[:60]!r})"
    return None


def _out_of_step(col: Collector, line: int, problem: str) -> InputError:
    return InputError(
        f"{col.at(line)}: the page is out of step here, {problem}; a blank line inside an abstract above "
        "splits it in two: join that paragraph and run again"
    )


def read_page(lines: list[str], col: Collector) -> None:
    """Add the page's papers to `col`; raises InputError at the first pair that is out of step."""
    paragraphs = _paragraphs(lines)
    i = 0
    while i < len(paragraphs) and _PAGE_HEADER.match(normalise(paragraphs[i][1])):
        i += 1
    body = paragraphs[i:]
    for j in range(0, len(body), 2):
        at, raw_title = body[j]
        title = normalise(raw_title)
        if (problem := title_problem(title)) is not None:
            raise _out_of_step(col, at, problem)
        if j + 1 >= len(body):
            col.warn(at, f"title {title[:60]!r} has no abstract, record skipped")
            break
        abstract_at, raw_abstract = body[j + 1]
        abstract = normalise(raw_abstract)
        if (problem := abstract_problem(abstract, title)) is not None:
            raise _out_of_step(col, abstract_at, problem)
        if j + 2 >= len(body) and not _ENDS_SENTENCE.search(abstract):
            col.damaged(abstract_at, "the last abstract stops mid-sentence: the page looks cut off", skip=False)
        title = clean(title)
        col.add(Paper(id=title_id(title), title=title, abstract=clean(abstract), source="page"), at)
