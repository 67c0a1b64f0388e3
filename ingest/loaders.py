"""Readers for the corpus formats; each yields `Paper` records."""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from assistant.errors import InputError
from assistant.models import Paper
from ingest.page import read_page
from ingest.records import (
    Collector,
    LoadReport,
    RecordError,
    clean,
    content_hash,
    exact_id,
    normalise,
    text_field,
    text_items,
    title_id,
)

Format = Literal["page", "jsonl", "beir", "arxiv"]
FORMATS: tuple[str, ...] = ("page", "jsonl", "beir", "arxiv")
GZIP_MAGIC = b"\x1f\x8b"

__all__ = [
    "FORMATS",
    "LoadReport",
    "content_hash",
    "detect_format",
    "load_path",
    "load_paths",
    "load_text",
    "normalise",
    "sample_corpus_path",
    "title_id",
]


def _gunzip(path: Path, raw: bytes) -> bytes:
    """A gzip file of any format is read as the file it holds."""
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: damaged gzip file ({exc}); it looks cut off, nothing was read") from None


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder without a corpus.jsonl") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if raw.startswith(GZIP_MAGIC):
        raw = _gunzip(path, raw)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text (byte {exc.start})") from None


def _resolve(path: Path) -> Path:
    if path.is_dir():
        for corpus in (path / "corpus.jsonl", path / "corpus.jsonl.gz"):
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


def _str(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _authors(obj: dict[str, Any]) -> tuple[str, ...]:
    names = text_items(obj, "authors")
    if not isinstance(obj.get("authors"), list):
        names = re.split(r",\s*|\s+and\s+", normalise("".join(names)))
    return tuple(name for name in (clean(n) for n in names) if name)


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


def _categories(obj: dict[str, Any]) -> tuple[str, ...]:
    return tuple(c for item in text_items(obj, "categories") for c in normalise(item).split())


def _record(fmt: Format, obj: dict[str, Any]) -> Paper:
    """One JSON record as a paper; raises RecordError naming the field that cannot be read."""
    names = ("title", "text", "_id") if fmt == "beir" else ("title", "abstract", "id")
    title = clean(text_field(obj, names[0], numbers=True))
    abstract = clean(text_field(obj, names[1]))
    source_id = exact_id(text_field(obj, names[2], numbers=True))
    year = _arxiv_year(obj) if fmt == "arxiv" else _year(obj.get("year"))
    url = normalise(text_field(obj, "url")) or None
    if fmt == "arxiv" and source_id and not url:
        url = f"https://arxiv.org/abs/{source_id}"
    return Paper(
        id=source_id or title_id(title),
        title=title,
        abstract=abstract,
        authors=_authors(obj),
        year=year,
        url=url,
        categories=_categories(obj),
        source=fmt,
    )


def _iter_json_lines(text: str, fmt: Format, col: Collector) -> None:
    lines = _lines(text)
    last = max((i for i, line in enumerate(lines, 1) if line.strip()), default=0)
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:
            if i == last and not text.endswith("\n"):
                col.damaged(i, "the file ends in the middle of a record (cut off?), line skipped")
            else:
                col.warn(i, f"malformed JSON ({str(exc).split(':')[0][:80]}), line skipped")
            continue
        if not isinstance(obj, dict):
            col.warn(i, "line is not a JSON object, skipped")
            continue
        try:
            paper = _record(fmt, obj)
        except RecordError as exc:
            col.warn(i, f"{exc}, record skipped")
            continue
        col.add(paper, i)


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
    col = Collector(where, strict, warn)
    if chosen == "page":
        read_page(_lines(text), col)
    else:
        _iter_json_lines(text, chosen, col)
    if not col.papers:
        raise InputError(f"{where}: no papers found (format {chosen})")
    return col.report()


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
    damage: list[str] = []
    skipped = 0
    for path in paths:
        report = load_path(path, fmt, strict=strict, warn=warn)
        warnings.extend(report.warnings)
        damage.extend(report.damage)
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
    return LoadReport(papers=list(merged.values()), warnings=warnings, skipped=skipped, damage=damage)


def sample_corpus_path() -> Path:
    """The bundled sample page of 72 abstracts."""
    return Path(__file__).parent / "data" / "papers-page.txt"
