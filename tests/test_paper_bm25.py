"""BM25 over whole papers read from the chunk index, and its place in fusion."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from assistant.config import Settings
from assistant.index.lexical import LexicalIndex
from assistant.index.paper_bm25 import search_papers
from assistant.models import Filters
from assistant.retrieval.retriever import FusionParams, fuse_ranked

CHUNKS = {
    "p1:0": "Sparse attention. Sparse attention cuts the cost of long inputs.",
    "p1:1": "Sparse attention. We test it on long documents and code.",
    "p2:0": "Code models. Models trained on code reason about programs.",
    "p3:0": "Long documents. Retrieval over long documents with sparse indexes and dense vectors.",
    "p3:1": "Long documents. Attention over long inputs is costly.",
}


def _bm25_of_papers(chunks: dict[str, str], query: str, k1: float, b: float) -> dict[str, float]:
    """BM25 of each paper taken as the concatenation of its chunks' tokens, written out from the formula."""
    ids = sorted(chunks)
    tokens = dict(zip(ids, LexicalIndex.tokenize([chunks[i] for i in ids]), strict=True))
    papers: dict[str, list[str]] = {}
    for cid in ids:
        papers.setdefault(cid.rsplit(":", 1)[0], []).extend(tokens[cid])
    avgdl = sum(len(t) for t in papers.values()) / len(papers)
    out = {}
    for pid, words in papers.items():
        score = 0.0
        for term in LexicalIndex.tokenize([query])[0]:
            df = sum(term in w for w in papers.values())
            tf = words.count(term)
            if tf:
                idf = math.log(1 + (len(papers) - df + 0.5) / (df + 0.5))
                score += idf * tf / (tf + k1 * (1 - b + b * len(words) / avgdl))
        if score > 0:
            out[pid] = score
    return out


def _check(index: LexicalIndex, chunks: dict[str, str], query: str) -> None:
    got = search_papers(index, query, 10, k1=0.6, b=0.5)
    want = _bm25_of_papers(chunks, query, 0.6, 0.5)
    assert [p for p, _ in got] == sorted(want, key=lambda p: (-want[p], p))
    assert all(s == pytest.approx(want[p]) for p, s in got)


def test_paper_scores_are_bm25_of_the_concatenated_chunks() -> None:
    ids = sorted(CHUNKS)
    index = LexicalIndex.build(ids, [CHUNKS[i] for i in ids], revision=1)
    _check(index, CHUNKS, "sparse attention for long documents")
    _check(index, CHUNKS, "code code")  # a repeated query term counts again
    assert search_papers(index, "unrelated words", 10) == []
    assert [p for p, _ in search_papers(index, "long documents", 1)] == ["p3"]


def test_paper_scores_follow_incremental_updates() -> None:
    """Removed chunks leave their paper (and the paper count), added segments join it, as a full rebuild would score."""
    ids = sorted(CHUNKS)
    index = LexicalIndex.build(ids, [CHUNKS[i] for i in ids], revision=1)
    search_papers(index, "attention", 10)  # lays out the old index first: the new one must not reuse it
    added = {"p2:1": "Code models. Sparse attention helps code models on long documents.", "p4:0": "Attention. Attention."}
    updated = index.apply(removed=["p1:1", "p3:0", "p3:1"], added=added, revision=2)
    chunks = {k: v for k, v in CHUNKS.items() if k not in {"p1:1", "p3:0", "p3:1"}} | added
    _check(updated, chunks, "sparse attention for long documents")
    assert "p3" not in dict(search_papers(updated, "long documents", 10))


def test_paper_list_fuses_with_its_share_of_the_bm25_weight() -> None:
    dense = [("a:0", "a", 0.9), ("b:1", "b", 0.6), ("c:0", "c", 0.3)]
    chunks = [("c:0", "c", 5.0), ("b:0", "b", 1.0)]
    papers = [("d", 5.0), ("c", 3.0), ("b", 2.0)]
    # z-scores: dense a 1.2247, b 0, c -1.2247 (d gets the floor); papers d 1.3363, c -0.2673, b -1.0690 (a gets the
    # floor); chunks c 1, b -1 (a and d get the floor). Fused 0.5 dense + 0.5 papers: a 0.0778, d 0.0558, b -0.5345,
    # c -0.7460, then scaled to [0, 1].
    ranked = fuse_ranked(dense, chunks, FusionParams(dense_weight=0.5, paper_share=1.0), papers=papers)
    fused = {f.paper_id: f for f in ranked}
    assert [f.paper_id for f in ranked] == ["a", "d", "b", "c"]
    assert [f.score for f in ranked] == pytest.approx([1.0, 0.9732, 0.2567, 0.0], abs=1e-4)
    assert fused["d"].chunk_ids == ("d:0",)  # found by paper BM25 alone: shown by its first chunk
    assert fused["b"].chunk_ids == ("b:1", "b:0") and fused["c"].lexical == 5.0 and math.isnan(fused["d"].dense)
    # Half the BM25 weight back to chunks: c's chunk score lifts it over b, and d falls to the bottom.
    half = fuse_ranked(dense, chunks, FusionParams(dense_weight=0.5, paper_share=0.5), papers=papers)
    assert [f.paper_id for f in half] == ["a", "c", "b", "d"]
    assert [f.score for f in half] == pytest.approx([1.0, 0.1590, 0.0177, 0.0], abs=1e-4)
    # No paper list, or none of its share: the two-list fusion exactly.
    two = fuse_ranked(dense, chunks, FusionParams(dense_weight=0.5))
    assert fuse_ranked(dense, chunks, FusionParams(dense_weight=0.5, paper_share=0.0), papers=papers) == two
    assert [f.paper_id for f in two] == ["a", "c", "b"]  # a 0.1124, c -0.1124, b -0.5


def test_search_with_paper_bm25_alone_ranks_by_it(sample_settings: Settings, embedder: Any) -> None:
    """Through Retriever.search, on the sample store: with all the weight on paper BM25 the papers come in its
    order, each with a stored chunk of its own; a title filter keeps the order among the papers it lets through."""
    from assistant import build_assistant

    retriever = build_assistant(sample_settings, embedder=embedder).retriever
    retriever.params = replace(retriever.params, dense_weight=0.0, paper_share=1.0)
    query = "parameter-efficient fine-tuning of code models"
    expected = [p for p, _ in search_papers(retriever.lexical.get(), query, 8)]
    hits = retriever.search(query, 8)
    assert [h.paper_id for h in hits] == expected
    assert all(h.passages and h.passages[0].paper_id == h.paper_id for h in hits)
    filtered = retriever.search(query, 8, Filters(title="code"))
    kept = [h.paper_id for h in filtered]
    assert len(kept) >= 3 and all("code" in h.title.casefold() for h in filtered)
    assert kept == [p for p in [p for p, _ in search_papers(retriever.lexical.get(), query, 400)] if p in set(kept)]
