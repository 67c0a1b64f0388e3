"""Readers for the corpus formats; each yields `Paper` records."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from assistant.errors import InputError
from assistant.models import Paper

Format = Literal["page", "jsonl", "beir", "arxiv"]
FORMATS: tuple[str, ...] = ("page", "jsonl", "beir", "arxiv")

# Paragraphs a daily-papers page shows before the first paper.
_PAGE_HEADER = re.compile(
    r"^(new|subscribe|get trending papers.*|by\s*ak\b.*|"
    r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(,\s*\d{4})?)$",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # lone halves from JSON escapes cannot be encoded as UTF-8


def normalise(text: str) -> str:
    """Collapse whitespace runs, drop control characters, keep everything else."""
    return _SPACE.sub(" ", _CONTROL.sub(" ", _SURROGATE.sub("\ufffd", text))).strip()


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


@dataclass
class LoadReport:
    """Papers read from one input, with the skipped-record warnings."""

    papers: list[Paper] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: int = 0  # records left out (malformed, empty); duplicates replaced by a later record are not counted


class _Collector:
    """Keeps the last paper per id and records skips, failing on them when strict."""

    def __init__(self, where: str, strict: bool, warn: Callable[[str], None] | None) -> None:
        self.where = where
        self.strict = strict
        self.warn_cb = warn
        self.papers: dict[str, Paper] = {}
        self.warnings: list[str] = []
        self.skipped = 0

    def warn(self, line: int | None, problem: str, *, skip: bool = True) -> None:
        message = f"{self.where}{f':{line}' if line else ''}: {problem}"
        if self.strict:
            raise InputError(message)
        self.skipped += skip
        self.warnings.append(message)
        if self.warn_cb:
            self.warn_cb(message)

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


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder without a corpus.jsonl") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text (byte {exc.start})") from None


def _resolve(path: Path) -> Path:
    if path.is_dir():
        corpus = path / "corpus.jsonl"
        if corpus.is_file():
            return corpus
        raise InputError(f"{path}: is a folder without a corpus.jsonl")
    return path


def _lines(text: str) -> list[str]:
    """Lines split at \\n only: str.splitlines also splits at U+2028, U+0085 and other characters
    that JSON strings may hold unescaped, which would cut records in two and shift line numbers."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _first_object(text: str) -> dict[str, Any] | None:
    for line in _lines(text):
        if line.strip():
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                return None
            return obj if isinstance(obj, dict) else None
    return None


# Fields only an arXiv metadata snapshot has; `categories` alone is a field plain JSONL may carry too.
_ARXIV_ONLY = ("update_date", "versions", "authors_parsed", "submitter")


def detect_format(path: Path, text: str) -> Format:
    """Guess the format from the first record; raises InputError when it cannot."""
    stripped = text.lstrip()
    if not stripped:
        raise InputError(f"{path}: file is empty")
    if stripped.startswith("{"):
        obj = _first_object(stripped)
        if obj is None:
            raise InputError(f"{path}:1: cannot detect the format: the first line is not a JSON object")
        if "_id" in obj and "text" in obj:
            return "beir"
        if "abstract" in obj and "id" in obj and any(key in obj for key in _ARXIV_ONLY):
            return "arxiv"
        if "abstract" in obj and "title" in obj:
            return "jsonl"
        raise InputError(
            f"{path}:1: cannot detect the format: expected fields title+abstract (JSONL), "
            "_id+title+text (BEIR) or id+title+abstract+update_date (arXiv snapshot); use --format"
        )
    paragraphs = [p for p in re.split(r"\n\s*\n", stripped) if p.strip()]
    if len(paragraphs) >= 2 and all("\n" not in p.strip() for p in paragraphs[:12]):
        return "page"
    raise InputError(f"{path}: cannot detect the format; use --format page|jsonl|beir|arxiv")


def _iter_page(text: str, col: _Collector) -> None:
    lines = _lines(text)
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
    i = 0
    while i < len(paragraphs) and _PAGE_HEADER.match(normalise(paragraphs[i][1])):
        i += 1
    body = paragraphs[i:]
    for j in range(0, len(body), 2):
        at, raw_title = body[j]
        title = normalise(raw_title)
        if j + 1 >= len(body):
            col.warn(at, f"title {title[:60]!r} has no abstract, record skipped")
            break
        abstract = normalise(body[j + 1][1])
        col.add(Paper(id=title_id(title), title=title, abstract=abstract, source="page"), at)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _authors(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(normalise(_str(a)) for a in value if _str(a).strip())
    text = normalise(_str(value))
    if not text:
        return ()
    return tuple(a.strip() for a in re.split(r",\s*|\s+and\s+", text) if a.strip())


def _year(value: Any) -> int | None:
    match = re.search(r"\b(1[89]\d\d|20\d\d)\b", _str(value))
    return int(match.group(1)) if match else None


def _arxiv_year(obj: dict[str, Any]) -> int | None:
    """Year of the first version when the snapshot lists versions, else of the last update."""
    versions = obj.get("versions")
    if isinstance(versions, list) and versions and isinstance(versions[0], dict):
        first = _year(versions[0].get("created"))
        if first is not None:
            return first
    return _year(obj.get("update_date")) or _year(obj.get("year"))


def _categories(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(normalise(_str(c)) for c in value if _str(c).strip())
    return tuple(normalise(_str(value)).split())


def _record(fmt: Format, obj: dict[str, Any]) -> Paper:
    if fmt == "beir":
        title, abstract, source_id = _str(obj.get("title")), _str(obj.get("text")), _str(obj.get("_id"))
    else:
        title, abstract, source_id = _str(obj.get("title")), _str(obj.get("abstract")), _str(obj.get("id"))
    title, abstract, source_id = normalise(title), normalise(abstract), normalise(source_id)
    year = _arxiv_year(obj) if fmt == "arxiv" else _year(obj.get("year"))
    url = _str(obj.get("url")) or None
    if fmt == "arxiv" and source_id and not url:
        url = f"https://arxiv.org/abs/{source_id}"
    return Paper(
        id=source_id or title_id(title),
        title=title,
        abstract=abstract,
        authors=_authors(obj.get("authors")),
        year=year,
        url=url,
        categories=_categories(obj.get("categories")),
        source=fmt,
    )


def _iter_json_lines(text: str, fmt: Format, col: _Collector) -> None:
    for i, line in enumerate(_lines(text), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:
            col.warn(i, f"malformed JSON ({str(exc).split(':')[0][:80]}), line skipped")
            continue
        if not isinstance(obj, dict):
            col.warn(i, "line is not a JSON object, skipped")
            continue
        col.add(_record(fmt, obj), i)


def load_text(
    text: str,
    where: str,
    fmt: str | None = None,
    *,
    strict: bool = False,
    warn: Callable[[str], None] | None = None,
) -> LoadReport:
    """Parse corpus text already in memory; `where` names it in messages."""
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"{where}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    chosen: Format = fmt or detect_format(Path(where), text)  # type: ignore[assignment]
    col = _Collector(where, strict, warn)
    if chosen == "page":
        _iter_page(text, col)
    else:
        _iter_json_lines(text, chosen, col)
    if not col.papers:
        raise InputError(f"{where}: no papers found (format {chosen})")
    return LoadReport(papers=list(col.papers.values()), warnings=col.warnings, skipped=col.skipped)


def load_path(
    path: str | Path,
    fmt: str | None = None,
    *,
    strict: bool = False,
    warn: Callable[[str], None] | None = None,
) -> LoadReport:
    """Read one corpus file (or a BEIR folder)."""
    resolved = _resolve(Path(path))
    return load_text(_read_text(resolved), str(resolved), fmt, strict=strict, warn=warn)


def load_paths(
    paths: Iterable[str | Path],
    fmt: str | None = None,
    *,
    strict: bool = False,
    warn: Callable[[str], None] | None = None,
) -> LoadReport:
    """Read several inputs; a later paper with the same id replaces an earlier one."""
    merged: dict[str, Paper] = {}
    warnings: list[str] = []
    skipped = 0
    for path in paths:
        report = load_path(path, fmt, strict=strict, warn=warn)
        warnings.extend(report.warnings)
        skipped += report.skipped
        for paper in report.papers:
            if paper.id in merged:
                message = f"{path}: duplicate id {paper.id!r} across inputs, keeping the last one"
                if strict:
                    raise InputError(message)
                warnings.append(message)
                if warn:
                    warn(message)
                del merged[paper.id]
            merged[paper.id] = paper
    return LoadReport(papers=list(merged.values()), warnings=warnings, skipped=skipped)


def sample_corpus_path() -> Path:
    """The bundled sample page of 72 abstracts."""
    return Path(__file__).parent / "data" / "papers-page.txt"

