"""Corpus readers on real files: the bundled page, JSON Lines, BEIR and arXiv snapshots."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from assistant.errors import InputError
from ingest.latex import plain_text
from ingest.loaders import (
    FORMATS,
    content_hash,
    detect_format,
    load_path,
    load_paths,
    load_text,
    sample_corpus_path,
    title_id,
)
from ingest.records import clean
from tests.conftest import SHARED

DATA = Path(__file__).parent / "data"
SCIFACT = SHARED / "data" / "scifact" / "corpus.jsonl"
HEADER_LINES = ["new", "Get trending papers in your email inbox!", "Subscribe", "byAK and the research community", "Mar 12"]


def page_paragraphs(path: Path) -> list[str]:
    """The file's blank-line separated paragraphs, read without the loader."""
    return [p.strip() for p in re.split(r"\n[ \t]*\n", path.read_text(encoding="utf-8")) if p.strip()]


def scifact_head(tmp: Path, n: int = 50, name: str = "corpus.jsonl") -> Path:
    if not SCIFACT.is_file():
        pytest.skip(f"{SCIFACT} is not available")
    with SCIFACT.open(encoding="utf-8") as src:
        lines = [next(src) for _ in range(n)]
    out = tmp / name
    out.write_text("".join(lines), encoding="utf-8")
    return out


# -- the bundled sample page -------------------------------------------------------------------


def test_bundled_sample_is_the_shared_page() -> None:
    shared = SHARED / "corpus" / "papers-page.txt"
    if not shared.is_file():
        pytest.skip("shared corpus not available")
    assert sample_corpus_path().read_bytes() == shared.read_bytes()


def test_sample_page_parses_exactly_its_72_titles() -> None:
    paragraphs = page_paragraphs(sample_corpus_path())
    assert paragraphs[:5] == HEADER_LINES
    body = paragraphs[5:]
    assert len(body) == 144
    expected_titles = body[0::2]
    expected_abstracts = [plain_text(" ".join(a.split())) for a in body[1::2]]
    assert all("\n" not in t for t in expected_titles)

    report = load_path(sample_corpus_path())
    assert report.warnings == []
    assert len(report.papers) == 72
    assert [p.title for p in report.papers] == expected_titles
    assert [p.abstract for p in report.papers] == expected_abstracts
    assert [p.id for p in report.papers] == [title_id(t) for t in expected_titles]
    assert len({p.id for p in report.papers}) == 72
    assert {p.source for p in report.papers} == {"page"}
    assert detect_format(sample_corpus_path(), sample_corpus_path().read_text(encoding="utf-8")) == "page"
    # the LaTeX of arXiv abstracts is plain text (tests/test_latex.py)
    assert not any("\\textbf{" in p.abstract or "blue{" in p.abstract or "\\%" in p.abstract for p in report.papers)


def test_sample_ids_are_stable_across_runs_and_whitespace(tmp_path: Path) -> None:
    first = load_path(sample_corpus_path()).papers
    second = load_path(sample_corpus_path()).papers
    assert [p.id for p in first] == [p.id for p in second]
    assert [content_hash(p) for p in first] == [content_hash(p) for p in second]

    # The same page with CRLF line ends, trailing spaces and doubled inner spaces gives the same ids.
    text = sample_corpus_path().read_text(encoding="utf-8")
    messy = "\r\n".join(line.replace(" ", "  ") + "  " if line.strip() else line for line in text.split("\n"))
    copy = tmp_path / "messy-page.txt"
    copy.write_bytes(messy.encode("utf-8"))
    again = load_path(copy).papers
    assert [p.id for p in again] == [p.id for p in first]
    assert [p.title for p in again] == [p.title for p in first]
    assert [p.abstract for p in again] == [p.abstract for p in first]


def test_title_ids() -> None:
    title = "A Survey of Graph Retrieval-Augmented Generation"
    assert title_id(title) == title_id(f"  {title.replace(' ', chr(10) + '  ')}\t")
    assert title_id(title) == title_id(title.upper())
    assert title_id(title) != title_id(title + " II")
    assert re.fullmatch(r"[0-9a-f]{16}", title_id(title))


def test_page_title_without_abstract_is_reported_with_its_line(tmp_path: Path) -> None:
    page = tmp_path / "page.txt"
    page.write_text("New\n\nFirst title\n\nFirst abstract. It has two sentences.\n\nDangling title\n", encoding="utf-8")
    report = load_path(page)
    assert [p.title for p in report.papers] == ["First title"]
    assert report.warnings == [f"{page}:7: title 'Dangling title' has no abstract, record skipped"]
    with pytest.raises(InputError, match=re.escape(f"{page}:7: title")):
        load_path(page, strict=True)


# -- JSON Lines ----------------------------------------------------------------------------------


def test_jsonl_records_with_optional_fields() -> None:
    path = DATA / "papers.jsonl"
    assert detect_format(path, path.read_text(encoding="utf-8")) == "jsonl"
    report = load_path(path)
    assert report.warnings == []
    full, string_fields, minimal = report.papers
    assert full.id == "p-001"
    assert full.title == "Sparse Retrieval for Scientific Claims"
    assert full.abstract == "We study sparse retrieval. It works well on claims. Results hold across three corpora."
    assert full.authors == ("Ada Lovelace", "Alan Turing")
    assert full.year == 2021
    assert full.url == "https://example.org/p-001"
    assert full.categories == ("cs.IR", "cs.CL")
    assert full.source == "jsonl"

    assert string_fields.id == title_id("Dense Passage Retrieval Revisited")
    assert string_fields.authors == ("Grace Hopper", "Edsger Dijkstra", "Barbara Liskov")
    assert string_fields.year == 2019
    assert string_fields.categories == ("cs.IR", "cs.LG")
    assert string_fields.url is None

    assert minimal.id == title_id("Minimal Record")
    assert (minimal.authors, minimal.year, minimal.url, minimal.categories) == ((), None, None, ())


def test_jsonl_without_id_shares_the_page_id_for_the_same_title() -> None:
    paper = load_path(sample_corpus_path()).papers[3]
    line = json.dumps({"title": "  " + paper.title.replace(" ", "   "), "abstract": paper.abstract})
    again = load_text(line, "inline.jsonl").papers[0]
    assert again.id == paper.id
    assert content_hash(again) == content_hash(paper)


def test_jsonl_lines_are_split_only_at_newlines(tmp_path: Path) -> None:
    # U+2028, U+0085 and form feeds are legal unescaped inside JSON strings; str.splitlines() would cut there.
    odd = "Line\u2028separated, next\u0085line and a form\x0cfeed."
    rows = [
        json.dumps({"title": "Odd characters", "abstract": odd}, ensure_ascii=False),
        "{broken",
        json.dumps({"title": "After", "abstract": "Fine."}),
    ]
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    report = load_path(path)
    assert [p.title for p in report.papers] == ["Odd characters", "After"]
    assert report.papers[0].abstract == "Line separated, next line and a form feed."
    assert len(report.warnings) == 1
    assert report.warnings[0].startswith(f"{path}:2: malformed JSON")


def test_malformed_and_non_object_lines_are_skipped_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"title": "Good", "abstract": "A good abstract."})
    path.write_text(f"{good}\n\n{{not json\n[1, 2]\n{json.dumps({'title': 'Also good', 'abstract': 'Yes.'})}\n", encoding="utf-8")
    seen: list[str] = []
    report = load_path(path, warn=seen.append)
    assert [p.title for p in report.papers] == ["Good", "Also good"]
    assert report.warnings == seen
    assert seen[0].startswith(f"{path}:3: malformed JSON")
    assert seen[1] == f"{path}:4: line is not a JSON object, skipped"
    assert report.skipped == 2
    with pytest.raises(InputError, match=re.escape(f"{path}:3: malformed JSON")):
        load_path(path, strict=True)


def test_empty_title_or_abstract_and_duplicate_ids(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    rows = [
        {"id": "a", "title": "", "abstract": "No title here."},
        {"id": "b", "title": "No abstract", "abstract": "   "},
        {"id": "c", "title": "First version", "abstract": "Old text."},
        {"id": "d", "title": "Other", "abstract": "Other text."},
        {"id": "c", "title": "Second version", "abstract": "New text."},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report = load_path(path)
    assert {p.id: p.title for p in report.papers} == {"d": "Other", "c": "Second version"}
    assert report.warnings == [
        f"{path}:1: empty title, record skipped",
        f"{path}:2: empty abstract for 'No abstract', record skipped",
        f"{path}:5: duplicate id 'c', keeping the last one",
    ]
    assert report.skipped == 2  # the replaced duplicate is not a skipped record
    with pytest.raises(InputError, match=re.escape(f"{path}:1: empty title")):
        load_path(path, strict=True)


def test_duplicate_ids_across_inputs_keep_the_last(tmp_path: Path) -> None:
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    one.write_text(json.dumps({"id": "x", "title": "Old", "abstract": "Old."}) + "\n", encoding="utf-8")
    two.write_text(json.dumps({"id": "x", "title": "New", "abstract": "New."}) + "\n", encoding="utf-8")
    report = load_paths([one, two])
    assert [(p.id, p.title) for p in report.papers] == [("x", "New")]
    assert len(report.warnings) == 1 and "'x'" in report.warnings[0]
    assert report.skipped == 0
    with pytest.raises(InputError, match="duplicate id 'x'"):
        load_paths([one, two], strict=True)


# -- BEIR ------------------------------------------------------------------------------------------


def test_beir_corpus_file_and_folder(tmp_path: Path) -> None:
    corpus = scifact_head(tmp_path, 50)
    raw = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    assert detect_format(corpus, corpus.read_text(encoding="utf-8")) == "beir"
    report = load_path(corpus)
    assert report.warnings == []
    assert [p.id for p in report.papers] == [r["_id"] for r in raw]
    assert [p.title for p in report.papers] == [clean(r["title"]) for r in raw]
    assert [p.abstract for p in report.papers] == [clean(r["text"]) for r in raw]
    assert {p.source for p in report.papers} == {"beir"}

    folder = load_path(tmp_path)  # the BEIR folder form: DIR/corpus.jsonl
    assert folder.papers == report.papers

    empty = tmp_path / "empty-folder"
    empty.mkdir()
    with pytest.raises(InputError, match=r"is a folder without a corpus\.jsonl"):
        load_path(empty)


def test_scifact_beir_folder_layout(tmp_path: Path) -> None:
    if not SCIFACT.is_file():
        pytest.skip("scifact not available")
    folder = tmp_path / "scifact"
    folder.mkdir()
    scifact_head(folder, 20)
    shutil.copytree(SCIFACT.parent / "qrels", folder / "qrels")
    report = load_path(folder)
    assert len(report.papers) == 20
    assert all(p.id.isdigit() for p in report.papers)


# -- arXiv snapshot --------------------------------------------------------------------------------


def test_arxiv_snapshot_lines() -> None:
    path = DATA / "arxiv-snapshot.jsonl"
    assert detect_format(path, path.read_text(encoding="utf-8")) == "arxiv"
    report = load_path(path)
    assert report.warnings == []
    diphoton, sparsity, mistral = report.papers
    assert diphoton.id == "0704.0001"
    assert diphoton.title == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    assert diphoton.abstract.startswith("A fully differential calculation in perturbative quantum chromodynamics is presented")
    assert "\n" not in diphoton.abstract and not diphoton.abstract.endswith(" ")
    assert diphoton.authors == ("C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan")
    assert diphoton.categories == ("hep-ph",)
    assert diphoton.year == 2007  # first version (2 Apr 2007), not the last update (2008)
    assert diphoton.url == "https://arxiv.org/abs/0704.0001"
    assert diphoton.source == "arxiv"
    assert sparsity.authors == ("Ileana Streinu", "Louis Theran")
    assert sparsity.categories == ("math.CO", "cs.CG")
    assert mistral.id == "2310.06825" and mistral.year == 2023
    assert mistral.url == "https://arxiv.org/abs/2310.06825"


def test_arxiv_without_versions_uses_update_date() -> None:
    record = {"id": "1234.5678", "title": "T", "abstract": "A.", "categories": "cs.CL", "update_date": "2019-05-01"}
    line = json.dumps(record)
    paper = load_text(line, "snap.jsonl").papers[0]
    assert (paper.source, paper.year) == ("arxiv", 2019)


# -- detection and --format ----------------------------------------------------------------------------


def test_detection_of_each_format(tmp_path: Path) -> None:
    corpus = scifact_head(tmp_path, 5)
    cases = {
        sample_corpus_path(): "page",
        DATA / "papers.jsonl": "jsonl",
        DATA / "arxiv-snapshot.jsonl": "arxiv",
        corpus: "beir",
    }
    for path, fmt in cases.items():
        assert detect_format(path, path.read_text(encoding="utf-8")) == fmt, path
        assert {p.source for p in load_path(path).papers} == {fmt}


def test_jsonl_with_id_and_categories_is_not_taken_for_arxiv() -> None:
    line = json.dumps({"id": "x1", "title": "T", "abstract": "A.", "categories": ["cs.IR"], "year": 2020})
    paper = load_text(line, "plain.jsonl").papers[0]
    assert paper.source == "jsonl"
    assert paper.year == 2020
    assert paper.url is None


def test_format_override() -> None:
    path = DATA / "arxiv-snapshot.jsonl"
    as_jsonl = load_path(path, "jsonl").papers
    assert {p.source for p in as_jsonl} == {"jsonl"}
    assert [p.id for p in as_jsonl] == ["0704.0001", "0704.0002", "2310.06825"]
    assert all(p.url is None and p.year is None for p in as_jsonl)  # no arXiv url or update_date year in plain JSONL
    with pytest.raises(InputError, match="no papers found"):
        load_path(path, "beir")  # no `text` field: every record is skipped
    with pytest.raises(InputError, match="unknown format 'csv'"):
        load_path(path, "csv")
    assert set(FORMATS) == {"page", "jsonl", "beir", "arxiv"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "file is empty"),
        ("   \n\n", "file is empty"),
        ('{"name": "x", "body": "y"}\n', ":1: cannot detect the format: expected fields"),
        ("{not json at all\n", ":1: cannot detect the format: the first line is not a JSON object"),
        ("one paragraph\nthat spans\nseveral lines\n", "cannot detect the format; use --format"),
    ],
)
def test_undetectable_inputs(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "input.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_path(path)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unreadable_inputs(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(InputError, match=re.escape(f"{missing}: no such file")):
        load_path(missing)
    binary = tmp_path / "latin1.jsonl"
    lines = [b'{"title": "a", "abstract": "b"}', b'{"title": "c", "abstract": "d"}', b'{"title": "caf\xe9", "abstract": "e"}']
    binary.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(InputError, match=re.escape(f"{binary}:3: not UTF-8 text")):
        load_path(binary)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes("\ufeff".encode() + (DATA / "papers.jsonl").read_bytes())
    assert load_path(path).papers == load_path(DATA / "papers.jsonl").papers


# -- fields, ids and compressed files ------------------------------------------------------------


def test_ids_are_kept_exactly_as_written(tmp_path: Path) -> None:
    path = tmp_path / "ids.jsonl"
    rows = [{"id": "a  b", "title": "First", "abstract": "One."}, {"id": "a b", "title": "Second", "abstract": "Two."}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report = load_path(path)
    assert [p.id for p in report.papers] == ["a  b", "a b"]
    assert report.warnings == []


@pytest.mark.parametrize("field", ["abstract", "title", "id"])
@pytest.mark.parametrize("value", [["a", "list"], {"an": "object"}])
def test_a_list_or_object_field_is_a_record_error_naming_file_line_and_field(tmp_path: Path, field: str, value: object) -> None:
    path = tmp_path / "typed.jsonl"
    good = {"id": "g", "title": "Good", "abstract": "Fine."}
    bad = {**good, "id": "b", field: value}
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    report = load_path(path)
    assert [p.id for p in report.papers] == ["g"]
    assert report.skipped == 1
    kind = "a list" if isinstance(value, list) else "an object"
    assert report.warnings == [f"{path}:2: field {field!r} is {kind}, expected text, record skipped"]
    with pytest.raises(InputError, match=re.escape(f"{path}:2: field {field!r}")):
        load_path(path, strict=True)


def test_gzip_files_are_read_whatever_their_format(tmp_path: Path) -> None:
    import gzip

    for name, source in (("page.txt.gz", sample_corpus_path()), ("papers.jsonl.gz", DATA / "papers.jsonl")):
        path = tmp_path / name
        path.write_bytes(gzip.compress(source.read_bytes()))
        assert load_path(path).papers == load_path(source).papers
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress((DATA / "papers.jsonl").read_bytes())[:-20])
    with pytest.raises(InputError, match=re.escape(f"{cut}: damaged gzip file")):
        load_path(cut)
