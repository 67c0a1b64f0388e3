"""Checks on corpus files uploaded through the app: size, content type, line count, encoding, file name."""

from __future__ import annotations

import gzip
import io
import json
import time
import zipfile
import zlib

import pytest

from assistant.errors import InputError
from ingest import uploads
from ingest.uploads import MAX_LINES, check_upload, load_upload, safe_label

JSONL = (json.dumps({"title": "A safe paper", "abstract": "It studies uploads. It finds them harmless."}) + "\n").encode()


def test_accepts_utf8_jsonl_and_page_text() -> None:
    report = load_upload(JSONL, "papers.jsonl", max_mb=1)
    assert [p.title for p in report.papers] == ["A safe paper"]
    page = "\ufeffFirst title\n\nFirst abstract sentence.\n\nSecond title\n\nSecond abstract sentence.\n".encode()
    assert len(load_upload(page, "page.txt", max_mb=1, fmt="page").papers) == 2


def test_size_limit_is_the_setting() -> None:
    with pytest.raises(InputError, match=r"limit is 1 MB \(ASSISTANT_UPLOAD_MAX_MB\)"):
        check_upload(b"a" * (1024 * 1024 + 1), "big.jsonl", max_mb=1)
    assert check_upload(b"a" * (1024 * 1024), "fits.txt", max_mb=1).size == 1024 * 1024


def test_empty_file_is_refused() -> None:
    with pytest.raises(InputError, match="empty"):
        check_upload(b"", "empty.jsonl", max_mb=1)


@pytest.fixture
def no_decompression(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open or inflate an archive fails the test."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("an upload was decompressed")

    targets = ((zlib, "decompress"), (zlib, "decompressobj"), (gzip, "decompress"), (gzip, "GzipFile"), (zipfile, "ZipFile"))
    for module, name in targets:
        monkeypatch.setattr(module, name, refuse)


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """A small ZIP that would inflate to 200 MB of zeros (built before any patching)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("corpus.jsonl", "w") as member:
        chunk = b"\0" * (1 << 20)
        for _ in range(200):
            member.write(chunk)
    return buf.getvalue()


def test_zip_bomb_is_refused_by_content_type_before_any_decompression(zip_bomb: bytes, no_decompression: None) -> None:
    assert len(zip_bomb) < 1024 * 1024
    with pytest.raises(InputError, match="ZIP archive"):
        load_upload(zip_bomb, "papers.jsonl", max_mb=20)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (gzip.compress(JSONL), "gzip archive"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "PNG image"),
        (b"%PDF-1.7\n" + JSONL, "PDF document"),
        (b"\x7fELF\x02\x01\x01" + b"\0" * 64, "executable"),
        (b"title\x00abstract\n", "binary file"),
        ("Title\n\nAbstract\n".encode("utf-16"), "UTF-16"),
    ],
)
def test_binary_and_archives_are_refused(data: bytes, kind: str) -> None:
    with pytest.raises(InputError, match=kind):
        check_upload(data, "papers.jsonl", max_mb=20)


def test_ten_million_lines_are_refused_with_a_message() -> None:
    data = b"x\n" * 10_000_000  # one 20 MB bytes object, no list of lines
    started = time.perf_counter()
    with pytest.raises(InputError, match=r"10,000,000 lines; uploads are limited to 1,000,000 lines") as err:
        check_upload(data, "many.txt", max_mb=20)
    assert time.perf_counter() - started < 10
    assert "python -m ingest" in str(err.value)
    assert check_upload(b"x\n" * MAX_LINES, "ok.txt", max_mb=20).lines == MAX_LINES


def test_not_utf8_names_the_line() -> None:
    with pytest.raises(InputError, match=r"latin\.txt:3: not UTF-8"):
        check_upload("Title\n\nCafé au lait\n".encode("latin-1"), "latin.txt", max_mb=1)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("/etc/shadow", "shadow"),
        ("..", "upload"),
        ("", "upload"),
        (None, "upload"),
        ("evil\x00name\n.jsonl", "evil_name_.jsonl"),
        ("a" * 300 + ".jsonl", "a" * 80),
    ],
)
def test_labels_are_bare_names(name: str | None, label: str) -> None:
    assert safe_label(name) == label


def test_client_name_is_never_used_as_a_path(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[object] = []
    real_open = open

    def spy(file: object, *args: object, **kwargs: object) -> object:
        opened.append(file)
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", spy)
    report = load_upload(JSONL, "../../etc/passwd", max_mb=1)
    # The papers come from the uploaded bytes, not from /etc/passwd, and no file was opened on the way.
    assert [p.title for p in report.papers] == ["A safe paper"]
    assert not [f for f in opened if "passwd" in str(f)]
    with pytest.raises(InputError) as err:
        load_upload(b'{"no": "papers"}\n', "../../etc/passwd", max_mb=1)
    assert str(err.value).startswith("passwd")
    assert uploads.safe_label("../../etc/passwd") == "passwd"
