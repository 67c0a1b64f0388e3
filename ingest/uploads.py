"""Checks on a corpus file uploaded through the app, before any of it is parsed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.errors import InputError
from ingest.loaders import LoadReport, load_text

MAX_LINES = 1_000_000
# Leading bytes of formats that are never corpus text; archives are refused here, so nothing is ever decompressed.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"PK\x07\x08", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x7fELF", "an executable"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\xff\xfe", "UTF-16 text (save it as UTF-8)"),
    (b"\xfe\xff", "UTF-16 text (save it as UTF-8)"),
)
_LABEL_UNSAFE = re.compile(r"[^\w .()+-]+")


@dataclass(frozen=True)
class UploadedText:
    """An upload that passed every check: decoded text and a display label."""

    label: str
    text: str
    size: int
    lines: int


def safe_label(name: str | None) -> str:
    """The client's file name reduced to a short display label; it is never used as a path."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    label = _LABEL_UNSAFE.sub("_", base).strip(" .")[:80]
    return label or "upload"


def _kind(data: bytes) -> str | None:
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if len(data) > 262 and data[257:262] == b"ustar":
        return "a tar archive"
    if b"\x00" in data[:8192]:
        return "a binary file"
    return None


def check_upload(data: bytes, name: str | None, max_mb: int, max_lines: int = MAX_LINES) -> UploadedText:
    """Refuse an upload that is too big, binary, an archive, too many lines or not UTF-8; else decode it."""
    label = safe_label(name)
    size = len(data)
    if size == 0:
        raise InputError(f"{label}: the file is empty")
    limit = max_mb * 1024 * 1024
    if size > limit:
        raise InputError(f"{label}: the file is {size / 1048576:.1f} MB; the limit is {max_mb} MB (ASSISTANT_UPLOAD_MAX_MB)")
    kind = _kind(data)
    if kind:
        raise InputError(f"{label}: this is {kind}, not corpus text; upload a UTF-8 page text, JSONL, BEIR or arXiv JSON file")
    # bytes.count runs in C over the buffer, so a huge line count is found without splitting anything.
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    if lines > max_lines:
        raise InputError(
            f"{label}: the file has {lines:,} lines; uploads are limited to {max_lines:,} lines, "
            "ingest bigger corpora with `python -m ingest`"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{label}:{line}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    return UploadedText(label=label, text=text, size=size, lines=lines)


def load_upload(data: bytes, name: str | None, max_mb: int, fmt: str | None = None, max_lines: int = MAX_LINES) -> LoadReport:
    """Check an upload and parse its papers; the name only labels messages."""
    upload = check_upload(data, name, max_mb, max_lines)
    return load_text(upload.text, upload.label, fmt)
