"""What every reader shares: text clean-up, paper ids, the load report and the per-record checks."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assistant.errors import InputError
from assistant.models import Paper
from ingest.latex import plain_text

_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # lone halves from JSON escapes cannot be encoded as UTF-8


def normalise(text: str) -> str:
    """Collapse whitespace runs, drop control characters, keep everything else."""
    return _SPACE.sub(" ", _CONTROL.sub(" ", _SURROGATE.sub("\ufffd", text))).strip()


def clean(text: str) -> str:
    """A title, abstract or author as stored: normalised, its LaTeX turned into plain text."""
    return normalise(plain_text(normalise(text)))


def exact_id(text: str) -> str:
    """A source id kept as written ("a  b" and "a b" are two papers); only unencodable halves are replaced."""
    return "" if not text.strip() else _SURROGATE.sub("\ufffd", text)


def title_id(title: str) -> str:
    """A stable id for a paper without a source id: a hash of its normalised title."""
    key = unicodedata.normalize("NFKC", normalise(title)).casefold()
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def content_hash(paper: Paper) -> str:
    """Hash of everything stored for a paper, so changed papers are re-embedded."""
    payload = json.dumps(
        [paper.title, paper.abstract, list(paper.authors), paper.year, paper.url, list(paper.categories)],
        ensure_ascii=False,
    )
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()[:16]


class RecordError(ValueError):
    """One record cannot be read; the reader skips it with a warning naming the file and line."""


def text_field(obj: dict[str, Any], name: str, *, numbers: bool = False) -> str:
    """A field that must hold text (or, with `numbers`, a number written as text); missing or null is ""."""
    value = obj.get(name)
    if value is None or isinstance(value, str):
        return value or ""
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    kind = "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else f"a {type(value).__name__}"
    raise RecordError(f"field {name!r} is {kind}, expected text")


def text_items(obj: dict[str, Any], name: str) -> list[str]:
    """A field holding text or a list of texts (an author may also be an object with a `name`)."""
    value = obj.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        return [text_field(obj, name)]
    out = []
    for item in value:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            item = item["name"]
        if not isinstance(item, str):
            raise RecordError(f"field {name!r} holds {type(item).__name__} items, expected text")
        out.append(item)
    return out


@dataclass
class LoadReport:
    """Papers read from one input, with the skipped-record warnings."""

    papers: list[Paper] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: int = 0  # records left out (malformed, empty); duplicates replaced by a later record are not counted
    damage: list[str] = field(default_factory=list)  # signs that the input is cut off or out of step: --prune refuses


class Collector:
    """Keeps the last paper per id and records skips, failing on them when strict."""

    def __init__(self, where: str, strict: bool, warn: Callable[[str], None] | None) -> None:
        self.where = where
        self.strict = strict
        self.warn_cb = warn
        self.papers: dict[str, Paper] = {}
        self.warnings: list[str] = []
        self.damage: list[str] = []
        self.skipped = 0

    def at(self, line: int | None) -> str:
        return f"{self.where}{f':{line}' if line else ''}"

    def warn(self, line: int | None, problem: str, *, skip: bool = True) -> None:
        message = f"{self.at(line)}: {problem}"
        if self.strict:
            raise InputError(message)
        self.skipped += skip
        self.warnings.append(message)
        if self.warn_cb:
            self.warn_cb(message)

    def damaged(self, line: int | None, problem: str, *, skip: bool = True) -> None:
        """A sign that the input is cut off: warned, and --prune refuses the whole input."""
        self.damage.append(f"{self.at(line)}: {problem}")
        self.warn(line, problem, skip=skip)

    def add(self, paper: Paper, line: int | None) -> None:
        if not paper.title:
            self.warn(line, "empty title, record skipped")
            return
        if not paper.abstract:
            self.warn(line, f"empty abstract for {paper.title[:60]!r}, record skipped")
            return
        if paper.id in self.papers:
            self.warn(line, f"duplicate id {paper.id!r}, keeping the last one", skip=False)
            del self.papers[paper.id]
        self.papers[paper.id] = paper

    def report(self) -> LoadReport:
        return LoadReport(list(self.papers.values()), self.warnings, self.skipped, self.damage)
