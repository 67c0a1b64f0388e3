"""Property tests: loaders end in a report or an InputError, and every span (sentence, chunk, evidence) is exact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from assistant.errors import InputError
from assistant.models import Paper, PaperHit, Passage
from assistant.text.sentences import sentence_spans
from ingest.chunking import chunk_paper, chunk_spans, token_counter
from ingest.loaders import FORMATS, LoadReport, detect_format, load_path, load_text

SLOW_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=SLOW_OK)
FEW = settings(max_examples=12, deadline=None, suppress_health_check=SLOW_OK)
FORMAT = st.sampled_from([None, *FORMATS])
FAKE_COUNT = lambda s: len(s.split())  # noqa: E731 - a cheap stand-in for tiktoken

# Text that looks like corpora: JSON punctuation, paragraph breaks, sentence ends, NULs and odd line separators.
SOUP_PIECES = [*'{}[]":,_ \n\r\t\x00\u2028\u0085.!?Aa1é', '"title"', '"abstract"', '"_id"', '"text"', '"id"', "\n\n"]
CORPUS_SOUP = st.lists(st.sampled_from(SOUP_PIECES), max_size=80).map("".join)
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40))
JSON_VALUE = st.recursive(
    JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
FIELD_NAMES = ["title", "abstract", "text", "_id", "id", "authors", "year", "url", "categories", "update_date", "versions"]
RECORD = st.dictionaries(st.sampled_from(FIELD_NAMES), JSON_VALUE, max_size=8)
# Records that mostly load: string title and abstract (or text), other fields anything.
LIKELY = st.fixed_dictionaries(
    {"title": st.text(max_size=30), "abstract": st.text(max_size=60), "text": st.text(max_size=60)},
    optional={name: JSON_VALUE for name in FIELD_NAMES[3:]},
)
LINE = st.one_of(LIKELY.map(json.dumps), LIKELY.map(lambda r: json.dumps(r, ensure_ascii=False)), RECORD.map(json.dumps))
JSONL = st.lists(st.one_of(LINE, LINE, JSON_VALUE.map(json.dumps), st.text(max_size=30)), max_size=6).map("\n".join)
# Prose with sentence ends, abbreviations, decimals, brackets and unicode spaces, so boundaries are exercised.
PHRASES = ["The model", "We show", "e.g.", "i.e.", "et al.", "Fig. 2", "3.5%", "U.S.", "(see [1])", "Dr. X", "x", "ÉTÉ", "数据"]
GAPS = [". ", "! ", "? ", ".\n", " ", "  ", "\t", "\u00a0", "\u2003", "\n\n", "...", ".) ", '." ']
PIECE = st.one_of(st.sampled_from(PHRASES), st.sampled_from(GAPS), st.text(max_size=12))
PROSE = st.lists(PIECE, max_size=40).map("".join)
SHORT_PROSE = st.lists(PIECE, min_size=1, max_size=12).map("".join).filter(str.strip)
UTF8 = st.one_of(st.text(), JSONL).map(lambda t: t.encode("utf-8"))


def check_report(report: Any) -> None:
    """A LoadReport holds at least one paper, each with an id, title and abstract, ids unique."""
    assert isinstance(report, LoadReport)
    assert report.papers
    assert len({p.id for p in report.papers}) == len(report.papers)
    for p in report.papers:
        assert p.id and p.title and p.abstract
        assert "\x00" not in p.title + p.abstract
    assert all(isinstance(w, str) and "\n" not in w for w in report.warnings)


def load_or_input_error(text: str, fmt: str | None) -> None:
    """load_text ends in a valid report or an InputError, nothing else."""
    try:
        report = load_text(text, "input.jsonl", fmt)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    check_report(report)


# -- loaders -------------------------------------------------------------------------------------------


@PROPS
@given(text=st.one_of(st.text(), CORPUS_SOUP, JSONL), fmt=FORMAT)
@example(text="", fmt=None)
@example(text="\x00" * 50, fmt=None)
@example(text="[" * 100_000, fmt=None)
@example(text="[" * 100_000, fmt="jsonl")
@example(text="{" * 100_000, fmt=None)
@example(text='{"title": "t", "abstract": ' + "[" * 100_000, fmt=None)
@example(text='{"title": "t", "abstract": "a"}\n' + "[" * 100_000 + "\n", fmt=None)
@example(text='{"title": ' + "[" * 900 + "]" * 900 + ', "abstract": "a"}', fmt=None)
@example(text='{"title": "t", "abstract": "a", "id": ' + "1" * 5000 + "}", fmt=None)
@example(text='{"title": "t", "abstract": "a", "year": NaN, "authors": {"x": [1]}}', fmt=None)
@example(text="a" * 1_000_000, fmt=None)
@example(text="Title\n\n" + "word " * 200_000, fmt=None)
@example(text='{"title": "t", "abstract": "' + "x" * 1_000_000 + '"}', fmt=None)
@example(text="T\x00itle\n\nAb\x00stract.\n\nSecond\n\nOther.", fmt=None)
def test_load_text_ends_in_report_or_input_error(text: str, fmt: str | None) -> None:
    """Arbitrary text, empty strings, 1 MB lines, NULs and deep nesting: a LoadReport or an InputError."""
    load_or_input_error(text, fmt)


@pytest.mark.parametrize(
    "text",
    [
        '{"title": "Broken emoji \\ud83d", "abstract": "An abstract."}',  # no id: the title is hashed
        "Title \ud800\n\nAbstract.\n\nSecond title\n\nSecond abstract.",
    ],
)
def test_lone_surrogates_end_in_report_or_input_error(text: str) -> None:
    """A JSON escape of half an emoji (common in scraped corpora) must not crash the loader."""
    load_or_input_error(text, None)


@PROPS
@given(text=st.text(), path=st.sampled_from(["x.jsonl", "x.txt", ""]))
def test_detect_format_returns_a_format_or_input_error(text: str, path: str) -> None:
    """detect_format names one of the formats or raises InputError."""
    try:
        assert detect_format(Path(path), text) in FORMATS
    except InputError as exc:
        assert "\n" not in str(exc)


@PROPS
@given(data=st.one_of(st.binary(max_size=400), UTF8))
@example(data=b"\xff\xfe{\x00")
@example(data=b'{"title": "caf\xe9", "abstract": "x"}\n')
@example(data=b"\xef\xbb\xbf" + b'{"title": "t", "abstract": "a"}')
@example(data=b"Title\n\nAbstract \xed\xa0\x80 text.\n\nT2\n\nA2")  # an encoded surrogate is invalid UTF-8
def test_load_path_on_arbitrary_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    """Arbitrary bytes in a file, invalid UTF-8 included: a LoadReport or an InputError naming the file."""
    path = tmp_path_factory.mktemp("bytes") / "corpus.jsonl"
    path.write_bytes(data)
    try:
        report = load_path(path)
    except InputError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    check_report(report)
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pytest.fail("invalid UTF-8 was loaded without an InputError")


# -- sentences and chunks ------------------------------------------------------------------------------


def check_sentence_spans(text: str) -> list[tuple[int, int]]:
    """Spans in order, non-overlapping, within bounds, trimmed and non-empty, covering every non-space character."""
    spans = sentence_spans(text)
    end = 0
    for s, e in spans:
        assert end <= s < e <= len(text)
        piece = text[s:e]
        assert piece == piece.strip() and piece
        assert not text[end:s].strip()  # nothing but whitespace between sentences
        end = e
    assert not text[end:].strip()
    return spans


@PROPS
@given(text=st.one_of(st.text(), PROSE))
@example(text="")
@example(text="   \n\t ")
@example(text="A. B. C.")
@example(text="e.g. " * 50)
def test_sentence_spans_are_ordered_trimmed_and_complete(text: str) -> None:
    """assistant.text.sentences.sentence_spans keeps every character and trims every span."""
    check_sentence_spans(text)


def check_chunks(paper: Paper, max_tokens: int, overlap: int, count: Any) -> None:
    """Every span indexes into the abstract, chunk text is the covered slice, and no text is lost."""
    chunks = chunk_paper(paper, max_tokens, overlap, count)
    abstract = paper.abstract
    assert [c.n for c in chunks] == list(range(len(chunks)))
    assert all(c.id == f"{paper.id}:{c.n}" for c in chunks)
    covered = [False] * len(abstract)
    last_start = -1
    for c in chunks:
        assert c.spans
        for s, e in c.spans:
            assert 0 <= s < e <= len(abstract)
            for i in range(s, e):
                covered[i] = True
        assert all(a[1] <= b[0] for a, b in zip(c.spans, c.spans[1:], strict=False))
        assert c.text == abstract[c.spans[0][0] : c.spans[-1][1]]
        assert c.spans[0][0] > last_start  # chunks move forward
        last_start = c.spans[0][0]
        if count is FAKE_COUNT:
            assert count(c.text) <= max_tokens  # one word is one fake token, so the budget always holds
    assert all(covered[i] or abstract[i].isspace() for i in range(len(abstract)))
    assert chunk_spans(abstract, max_tokens, overlap, count) == [c.spans for c in chunks]


BUDGETS = st.tuples(st.integers(1, 60), st.integers(0, 30))


@PROPS
@given(abstract=st.one_of(st.text(), PROSE), budget=BUDGETS)
@example(abstract="", budget=(5, 2))
@example(abstract="word " * 5000, budget=(7, 3))
@example(abstract="x" * 10_000, budget=(1, 0))
@example(abstract="One. Two. Three. Four. Five.", budget=(1, 1))
def test_chunks_index_into_their_abstract(abstract: str, budget: tuple[int, int]) -> None:
    """chunk_paper/chunk_spans on arbitrary text with a whitespace token counter."""
    max_tokens, overlap = budget
    check_chunks(Paper(id="p", title="T", abstract=abstract), max_tokens, overlap, FAKE_COUNT)


@FEW
@given(abstract=PROSE, budget=st.tuples(st.integers(8, 80), st.integers(0, 20)))
@example(abstract="Λ-calculus über 数据 🙂. " * 40 + "e.g. the U.S. model!", budget=(16, 4))
def test_chunks_with_real_tiktoken(abstract: str, budget: tuple[int, int]) -> None:
    """The same invariants with the real tiktoken counter, whose tokens need not split at spaces."""
    count = token_counter()
    check_chunks(Paper(id="p", title="T", abstract=abstract), budget[0], budget[1], count)
    for c in chunk_paper(Paper(id="p", title="T", abstract=abstract), budget[0], budget[1], count):
        if len(c.spans) > 1:  # several sentences are only joined while they fit
            assert count(c.text) <= budget[0]


# -- evidence ------------------------------------------------------------------------------------------


def hit(paper_id: str, abstract: str) -> PaperHit:
    """A retrieved paper as the retriever builds it, abstract in the metadata."""
    title = f"Paper {paper_id}"
    meta: dict[str, object] = {"paper_id": paper_id, "title": title, "abstract": abstract, "hash": str(hash(abstract))}
    passage = Passage(chunk_id=f"{paper_id}:0", paper_id=paper_id, title=title, text=abstract, score=1.0, metadata=meta)
    return PaperHit(paper_id=paper_id, title=title, score=1.0, dense=0.5, lexical=0.0, passages=(passage,), metadata=meta)


@pytest.mark.slow
@FEW
@given(abstracts=st.lists(SHORT_PROSE, min_size=1, max_size=3), question=st.text(max_size=40))
@example(abstracts=["  Leading space. Trailing space.  ", "No end mark", "e.g. one. Two!"], question="what?")
def test_evidence_sentences_are_exact_slices(embedder: Any, abstracts: list[str], question: str) -> None:
    """EvidenceBuilder with the real embedder: every Sentence is abstract[start:end]."""
    from assistant.answering.evidence import EvidenceBuilder
    from assistant.answering.scorer import DocFreqTermStats

    hits = [hit(f"p{i}", a) for i, a in enumerate(abstracts)]
    builder = EvidenceBuilder(embedder, DocFreqTermStats.from_texts(abstracts), sentences=3)
    qv = embedder.embed_query(question or "?")
    evidence = builder.build(question, hits, qv)
    assert [e.paper_id for e in evidence] == [h.paper_id for h in hits]
    for ev, h, scored in zip(evidence, hits, builder.score(question, hits, qv), strict=True):
        assert ev.abstract == h.abstract
        assert 1 <= len(ev.sentences) <= 3
        # Quotes follow the quote ranker; the paper's best is its most probable sentence, quoted or not.
        assert ev.best == max(s.score for s in scored) >= max(s.score for s in ev.sentences)
        for s in [*ev.sentences, *builder.all_sentences(h, question, qv)]:
            assert 0 <= s.start < s.end <= len(ev.abstract)
            assert ev.abstract[s.start : s.end] == s.text
