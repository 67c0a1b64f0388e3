"""Sentence-aware chunking: exact spans, ids, token budgets, overlap, and the embedder's window."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from assistant.config import Settings
from assistant.models import Chunk, Paper
from assistant.text.sentences import sentence_spans
from ingest.chunking import chunk_paper, chunk_papers, chunk_spans, embedding_text, token_counter
from ingest.loaders import load_path, load_text, sample_corpus_path
from tests.conftest import SHARED

SCIFACT = SHARED / "data" / "scifact" / "corpus.jsonl"
BUDGETS = [(160, 32), (64, 16), (40, 0), (24, 8)]


def words(text: str) -> int:
    """A deterministic counter for hand-checked cases: one token per word."""
    return len(text.split())


def corpus() -> list[Paper]:
    papers = list(load_path(sample_corpus_path()).papers)
    if SCIFACT.is_file():
        with SCIFACT.open(encoding="utf-8") as f:
            head = "".join(next(f) for _ in range(60))
        papers += load_text(head, str(SCIFACT)).papers
    return papers


def check_spans(chunk: Chunk, abstract: str, sentences: list[tuple[int, int]]) -> Iterator[str]:
    """A chunk's spans are ordered, in range, trimmed, and each a sentence or inside one."""
    previous_end = -1
    for s, e in chunk.spans:
        piece = abstract[s:e]
        if not (0 <= s < e <= len(abstract)) or s < previous_end:
            yield f"{chunk.id}: span {(s, e)} out of order or out of range"
        if piece != piece.strip():
            yield f"{chunk.id}: span {(s, e)} has untrimmed whitespace"
        if (s, e) not in sentences and not any(ss <= s and e <= se for ss, se in sentences):
            yield f"{chunk.id}: span {(s, e)} is neither a sentence nor inside one"
        previous_end = e


def check_coverage(paper: Paper, chunks: list[Chunk]) -> Iterator[str]:
    """Nothing is lost: the chunks' spans cover every non-space character of the abstract."""
    covered = [False] * len(paper.abstract)
    for chunk in chunks:
        for s, e in chunk.spans:
            covered[s:e] = [True] * (e - s)
    lost = [i for i, ch in enumerate(paper.abstract) if not ch.isspace() and not covered[i]]
    if lost:
        yield f"{paper.id}: characters {lost[:5]} are in no chunk"


def check_chunks(paper: Paper, chunks: list[Chunk], max_tokens: int, overlap: int, count: object) -> Iterator[str]:
    """Every invariant a paper's chunks must hold; yields the broken ones."""
    assert callable(count)
    abstract = paper.abstract
    sentences = sentence_spans(abstract)
    if not chunks:
        yield f"{paper.id}: no chunks"
        return
    for n, chunk in enumerate(chunks):
        if (chunk.paper_id, chunk.n, chunk.id) != (paper.id, n, f"{paper.id}:{n}"):
            yield f"{chunk.id}: wrong id or number"
        if chunk.text != abstract[chunk.spans[0][0] : chunk.spans[-1][1]]:
            yield f"{chunk.id}: text is not the abstract between its first and last span"
        yield from check_spans(chunk, abstract, sentences)
        tokens = count(chunk.text)
        if tokens > max_tokens and len(chunk.text.split()) > 1:
            yield f"{chunk.id}: {tokens} tokens > {max_tokens}"
    yield from check_coverage(paper, chunks)
    # Chunks move forward; what they repeat from the previous chunk fits the overlap budget.
    for before, after in itertools.pairwise(chunks):
        if after.spans[0][0] <= before.spans[0][0]:
            yield f"{after.id}: does not move forward"
        shared = [span for span in after.spans if span in before.spans]
        if shared:
            carried = abstract[shared[0][0] : shared[-1][1]]
            if count(carried) > overlap:
                yield f"{after.id}: carries {count(carried)} tokens > overlap {overlap}"
            if shared != list(after.spans[: len(shared)]) or shared != list(before.spans[-len(shared) :]):
                yield f"{after.id}: overlap is not the tail of the previous chunk"
        if overlap == 0 and shared:
            yield f"{after.id}: repeats spans with overlap 0"


@pytest.mark.parametrize(("max_tokens", "overlap"), BUDGETS)
def test_chunks_of_real_abstracts_hold_every_invariant(max_tokens: int, overlap: int) -> None:
    count = token_counter()
    problems: list[str] = []
    total = 0
    for paper in corpus():
        chunks = chunk_paper(paper, max_tokens, overlap, count)
        total += len(chunks)
        problems.extend(check_chunks(paper, chunks, max_tokens, overlap, count))
    assert problems == []
    assert total > len(corpus())  # budgets this small split most abstracts


def test_sample_chunk_counts_at_default_settings() -> None:
    s = Settings(_env_file=None)
    papers = load_path(sample_corpus_path()).papers
    chunks = chunk_papers(papers, s.chunk_tokens, s.chunk_overlap)
    assert set(chunks) == {p.id for p in papers}
    assert all(chunks[p.id] for p in papers)
    assert sum(len(c) for c in chunks.values()) == sum(len(chunk_paper(p, s.chunk_tokens, s.chunk_overlap)) for p in papers)


def test_chunk_tokens_setting_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_CHUNK_TOKENS", "48")
    monkeypatch.setenv("ASSISTANT_CHUNK_OVERLAP", "12")
    s = Settings(_env_file=None)
    assert (s.chunk_tokens, s.chunk_overlap) == (48, 12)
    count = token_counter()
    for paper in load_path(sample_corpus_path()).papers:
        chunks = chunk_paper(paper, s.chunk_tokens, s.chunk_overlap)
        assert all(count(c.text) <= 48 or len(c.text.split()) == 1 for c in chunks), paper.title
        assert list(check_chunks(paper, chunks, 48, 12, count)) == []


def test_overlap_carries_whole_trailing_sentences() -> None:
    text = " ".join(f"Sentence {n} has five words." for n in range(1, 7))  # six sentences of five words
    assert len(sentence_spans(text)) == 6
    sentences = sentence_spans(text)

    no_overlap = chunk_spans(text, 15, 0, words)
    assert no_overlap == [tuple(sentences[0:3]), tuple(sentences[3:6])]

    one_back = chunk_spans(text, 15, 5, words)
    assert one_back == [tuple(sentences[0:3]), tuple(sentences[2:5]), tuple(sentences[4:6])]

    two_back = chunk_spans(text, 15, 10, words)
    assert two_back == [tuple(sentences[0:3]), tuple(sentences[1:4]), tuple(sentences[2:5]), tuple(sentences[3:6])]

    # An overlap as large as the budget still moves forward by at least one sentence.
    huge = chunk_spans(text, 15, 100, words)
    starts = [c[0][0] for c in huge]
    assert starts == sorted(set(starts)) and huge[-1][-1] == sentences[-1]

    # Overlap never carries a partial sentence: 4 tokens fit no five-word sentence.
    assert chunk_spans(text, 15, 4, words) == no_overlap


def test_long_sentence_is_cut_at_word_boundaries() -> None:
    sentence = " ".join(f"w{i}" for i in range(100)) + "."
    text = f"Short start. {sentence} Short end."
    chunks = chunk_spans(text, 30, 0, words)
    spans = [span for c in chunks for span in c]
    assert all(words(text[s:e]) <= 30 for s, e in spans)
    assert all(words(text[c[0][0] : c[-1][1]]) <= 30 for c in chunks)
    pieces = [text[s:e] for s, e in spans]
    assert " ".join(pieces) == text  # contiguous and complete, cut only at spaces
    paper = Paper(id="long", title="Long", abstract=text)
    assert list(check_chunks(paper, chunk_paper(paper, 30, 0, words), 30, 0, words)) == []


def test_a_word_longer_than_the_budget_is_its_own_chunk() -> None:
    count = token_counter()
    giant = "x" * 400
    text = f"Before the giant word. {giant} After it."
    assert count(giant) > 20
    chunks = chunk_paper(Paper(id="g", title="G", abstract=text), 20, 0, count)
    assert giant in [c.text for c in chunks]
    assert all(count(c.text) <= 20 for c in chunks if c.text != giant)
    assert "".join(c.text for c in chunks).replace(" ", "") == text.replace(" ", "")


def test_chunks_are_deterministic() -> None:
    papers = load_path(sample_corpus_path()).papers
    assert chunk_papers(papers, 64, 16) == chunk_papers(papers, 64, 16)


def test_title_and_chunk_fit_minilm_window(embedder) -> None:  # type: ignore[no-untyped-def]
    s = Settings(_env_file=None)
    tokenizer = embedder.model.tokenizer
    window = embedder.max_tokens
    assert window == 256
    worst = 0
    for paper in load_path(sample_corpus_path()).papers:
        for chunk in chunk_paper(paper, s.chunk_tokens, s.chunk_overlap):
            pieces = len(tokenizer(embedding_text(paper.title, chunk.text))["input_ids"])  # [CLS] and [SEP] included
            worst = max(worst, pieces)
            assert pieces <= window, chunk.id
    assert worst > 100  # the check measured real chunks


_SENTENCE = st.builds(
    lambda head, rest, end: head + rest + end,
    st.sampled_from(["The", "We", "Results", "A", "In 2020", "e.g. this", "Fig. 3"]),
    st.text(alphabet=st.sampled_from(list("abcdefgh ,;-()0123456789")), min_size=0, max_size=120),
    st.sampled_from([".", "!", "?", ".)", ". ", ""]),
)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sentences=st.lists(_SENTENCE, min_size=1, max_size=12),
    gaps=st.lists(st.sampled_from([" ", "  ", "\n", " \t "]), min_size=12, max_size=12),
    max_tokens=st.integers(min_value=3, max_value=60),
    overlap=st.integers(min_value=0, max_value=40),
)
def test_invariants_hold_for_generated_abstracts(sentences: list[str], gaps: list[str], max_tokens: int, overlap: int) -> None:
    text = "".join(s + g for s, g in zip(sentences, gaps, strict=False)).strip()
    if not text:
        return
    paper = Paper(id="gen", title="Generated", abstract=text)
    count = token_counter()
    chunks = chunk_paper(paper, max_tokens, overlap, count)
    assert list(check_chunks(paper, chunks, max_tokens, overlap, count)) == []


def test_chunk_spans_survive_a_json_round_trip() -> None:
    # spans are stored as JSON in Chroma metadata and read back by the citation checker
    paper = load_path(sample_corpus_path()).papers[0]
    for chunk in chunk_paper(paper, 64, 16):
        back = [tuple(span) for span in json.loads(json.dumps(chunk.spans))]
        assert [paper.abstract[s:e] for s, e in back] == [paper.abstract[s:e] for s, e in chunk.spans]
