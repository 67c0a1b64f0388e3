"""What is stored and indexed for a paper: plain text from LaTeX, and a title that cannot hide its abstract."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from assistant.index.lexical import LexicalCache, LexicalIndex
from assistant.index.paths import lexical_folder
from assistant.index.store import open_store
from assistant.retrieval.retriever import Retriever
from ingest.chunking import TITLE_TOKENS, bounded_title, embedding_text, token_counter
from ingest.loaders import load_path, sample_corpus_path
from ingest.pipeline import ingest_report
from tests.conftest import make_settings

WORDS = ["adaptive", "sparse", "lattice", "quantum", "kernel", "manifold", "stochastic", "spectral", "tensor", "graph"]


def long_title(n: int = 5000) -> str:
    return " ".join(WORDS[i % len(WORDS)] + ("" if i % 7 else "s") for i in range(n))


@pytest.fixture(scope="module")
def small_collection(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[tuple[Any, Any]]:
    """Ten sample papers plus the Tülu paper and one with a 5,000-word title, ingested from a JSONL file."""
    tmp = tmp_path_factory.mktemp("ingest-text")
    papers = load_path(sample_corpus_path()).papers
    tulu = next(p for p in papers if "Camels" in p.title)
    hidden = papers[40]  # its abstract, under a title of 5,000 words
    rows = [{"id": p.id, "title": p.title, "abstract": p.abstract} for p in [*papers[:10], tulu]]
    rows.append({"id": "long-title", "title": long_title(), "abstract": hidden.abstract})
    # The Tülu paper as arXiv writes it: LaTeX accents and escapes, read through the real loader.
    rows[10]["abstract"] = rows[10]["abstract"].replace("Tülu", 'T\\"ulu').replace("%", "\\%")
    path = tmp / "papers.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    s = make_settings(tmp)
    ingest_report(s, load_path(path), embedder=embedder)
    store = open_store(s, embedder.name, embedder.dim)
    yield s, store
    store.close()


def test_a_question_about_tulu_finds_its_paper_by_bm25(small_collection: tuple[Any, Any]) -> None:
    s, store = small_collection
    index = LexicalIndex.load(lexical_folder(s))
    assert index is not None
    hits = index.search("Tell me about Tülu.", 3)
    tulu = next(m for m in store.papers() if "Camels" in str(m["title"]))
    assert hits and hits[0][0].split(":")[0] == tulu["paper_id"]


def test_a_5000_word_title_does_not_hide_its_paper(small_collection: tuple[Any, Any], embedder: Any) -> None:
    s, store = small_collection
    stored = next(m for m in store.papers() if m["paper_id"] == "long-title")
    assert stored["title"] == long_title()  # the stored title is whole
    abstract = load_path(sample_corpus_path()).papers[40].abstract
    question = abstract.split(". ")[1]
    retriever = Retriever(store, embedder, LexicalCache(store, lexical_folder(s)))
    hits = retriever.search(question, 3)
    assert hits[0].paper_id == "long-title", [h.title[:40] for h in hits]
    assert hits[0].dense > 0.3  # the abstract itself was embedded, not only the title (that scores about 0.1)


def test_embedded_title_is_bounded_and_short_titles_are_whole() -> None:
    count = token_counter()
    assert bounded_title("A Short Title: With a Colon") == "A Short Title: With a Colon"
    cut = bounded_title(long_title())
    assert long_title().startswith(cut) and 0 < count(cut) <= TITLE_TOKENS
    assert count(bounded_title("x" * 5000)) <= TITLE_TOKENS  # one endless word
    text = embedding_text(long_title(), "The chunk.")
    assert text.endswith("\nThe chunk.") and count(text) <= TITLE_TOKENS + count("\nThe chunk.")


def test_chunks_stay_inside_minilm_window_under_a_long_title(embedder: Any) -> None:
    from ingest.chunking import chunk_paper
    from ingest.records import clean

    paper = load_path(sample_corpus_path()).papers[40]
    for chunk in chunk_paper(paper, 160, 32):
        pieces = len(embedder.model.tokenizer(embedding_text(clean(long_title()), chunk.text))["input_ids"])
        assert pieces <= embedder.max_tokens == 256
