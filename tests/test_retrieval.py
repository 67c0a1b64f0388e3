"""The retrieval hot path's shortcuts give the same results as the slow paths they replace."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from assistant.index.lexical import LexicalCache, LexicalIndex
from assistant.index.store import ChunkStore, open_store
from assistant.retrieval.retriever import FusionParams, Retriever
from ingest.loaders import LoadReport, load_path, sample_corpus_path
from tests.conftest import make_settings


def test_query_embedding_matches_batch_embedding(embedder: Any) -> None:
    """The single-query path (straight through the model) gives encode()'s vectors, long and odd inputs included."""
    queries = [
        "which work finds an optimizer by searching over programs?",
        "CoGEX versus Think-and-Execute",
        "Ünïcödé — 数学 reasoning, émojis 🤖 and\ttabs",
        " ".join(["parameter-efficient fine-tuning of large language models"] * 80),  # past the 256 word-piece limit
        "a",
    ]
    for q in queries:
        fast, slow = embedder.embed_query(q), embedder.embed([q])[0]
        assert len(fast) == len(slow) == 384
        assert max(abs(a - b) for a, b in zip(fast, slow, strict=True)) < 1e-5, q


def test_bm25_search_matches_bm25s_retrieve() -> None:
    """Our top-k selection returns bm25s's own scores in order, ties broken by document number."""
    texts = [f"graph neural networks for topic {i % 7} with {'attention ' * (i % 3)}and pruning" for i in range(120)]
    texts += ["protein folding", "", "graph graph graph"]
    ids = [f"p{i}:0" for i in range(len(texts))]
    index = LexicalIndex.build(ids, texts, revision=1)
    for query, k in (("graph attention pruning", 10), ("topic 3 graph", 200), ("protein", 5), ("unknownword", 5)):
        hits = index.search(query, k)
        tokens = LexicalIndex.tokenize([query])[0]
        retriever = index.engine
        term_ids = [retriever.vocab_dict[t] for t in tokens if t in retriever.vocab_dict]
        expected = retriever.get_scores_from_ids(term_ids) if term_ids else None
        if expected is None:
            assert hits == []
            continue
        ranked = sorted((i for i in range(len(ids)) if expected[i] > 0), key=lambda i: (-expected[i], i))[:k]
        assert [cid for cid, _ in hits] == [ids[i] for i in ranked]
        assert [round(s, 5) for _, s in hits] == [round(float(expected[i]), 5) for i in ranked]
        _, scores = retriever.retrieve([tokens], k=min(k, len(ids)), show_progress=False, n_threads=1)
        assert sorted(round(float(s), 5) for s in scores[0] if s > 0) == sorted(round(s, 5) for _, s in hits)


@pytest.fixture
def small_store(tmp_path: Path, embedder: Any) -> Any:
    """Twelve sample papers in an embedded store of their own: (settings, store)."""
    from ingest.pipeline import ingest_report

    s = make_settings(tmp_path)
    papers = load_path(sample_corpus_path()).papers[:12]
    ingest_report(s, LoadReport(papers=papers), embedder=embedder)
    store = open_store(s, embedder.name, embedder.dim)
    yield s, store
    store.close()


def _folder(s: Any) -> Path:
    from assistant.index.paths import lexical_folder

    return lexical_folder(s)


def test_cache_sees_own_writes_at_once_and_others_after_the_recheck(small_store: tuple[Any, ChunkStore]) -> None:
    s, store = small_store
    cache = LexicalCache(store, _folder(s), recheck_s=3600)
    first = cache.get()
    assert first.revision == store.revision

    # Another process bumps the revision: this process did not, so the cache keeps its index until the recheck.
    meta = dict(store.collection.metadata or {})
    meta["revision"] = int(meta.get("revision", 0)) + 1
    store.collection.modify(metadata=meta)
    assert cache.get() is first
    assert cache.wait() is first  # nothing noticed the bump, so nothing is refreshing
    cache.recheck_s = 0.0
    assert cache.get() is first  # the query is answered by the index it has; the refresh runs in the background
    second = cache.wait()
    assert second is not None and second.revision == store.revision == first.revision + 1

    # A write by this process is noticed on the next call, whatever the recheck interval.
    cache.recheck_s = 3600
    assert cache.get() is second
    store.bump_revision()
    cache.get()
    third = cache.wait()
    assert third is not None and third.revision == store.revision == second.revision + 1
    assert cache.get() is third


def test_search_fills_k_when_the_best_papers_were_deleted(small_store: tuple[Any, ChunkStore], embedder: Any) -> None:
    """More deleted papers than the spares fused up front: the search goes on down the full ranking."""
    s, store = small_store
    cache = LexicalCache(store, _folder(s), recheck_s=3600)
    lexical_only = FusionParams(dense_weight=0.0)  # fused order is the BM25 order, so the deleted papers come first
    retriever = Retriever(store, embedder, cache, lexical_only)
    query = "language models reasoning with code and program execution"
    before = [h.paper_id for h in retriever.search(query, 10)]
    assert len(before) >= 8
    store.delete_papers(before[:5])
    store.bump_revision()  # as every writer does; the query's BM25 search still runs on the cached index, which holds them

    hits = retriever.search(query, 2)
    assert [h.paper_id for h in hits] == before[5:7]
    assert all(h.passages and h.title for h in hits)


def test_summary_lists_relevant_papers_past_the_cap(sample_settings: Any, embedder: Any) -> None:
    """Papers above the summary threshold that the cap left out are counted and named, not dropped silently."""
    from assistant import build_assistant

    question = "Summarise what this collection says about large language model reasoning"
    full = build_assistant(sample_settings, embedder=embedder).ask(question, mode="summarise")
    capped_settings = sample_settings.model_copy(update={"summary_max_papers": 3})
    capped = build_assistant(capped_settings, embedder=embedder).ask(question, mode="summarise")
    found = re.search(r"of the (\d+) relevant papers found", full.coverage)
    assert found is not None
    relevant = int(found.group(1))
    assert relevant > 3 and len(capped.evidence) == 3
    assert f"Cites 3 of the {relevant} relevant papers found" in capped.coverage
    assert f"of the {relevant} relevant papers found" in capped.text  # the extractive summary says the same
    past = {e.title for e in full.evidence} - {e.title for e in capped.evidence}
    assert past and past <= set(capped.left_out)


def test_query_and_batch_embeddings_from_many_threads(embedder: Any) -> None:
    """Queries embedded while other threads embed batches of mixed lengths: no errors, the same vectors."""
    import threading

    short = ["graph pruning", "what is CoGEX?"]
    long = [" ".join(["retrieval augmented generation with citations"] * n) for n in (3, 9, 20)]
    reference = {q: embedder.embed([q])[0] for q in short + long}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for r in range(12):
                if (i + r) % 2:
                    embedder.embed(long + short)
                else:
                    q = (short + long)[(i + r) % 5]
                    got = embedder.embed_query(q)
                    assert max(abs(a - b) for a, b in zip(got, reference[q], strict=True)) < 1e-5
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, repr(errors[0])


def test_fusion_params_follow_the_settings(tmp_path: Path) -> None:
    """Every fusion setting reaches the retriever, so a setting changed in .env changes the ranking."""
    settings = make_settings(
        tmp_path, fusion="rrf", dense_weight=0.3, paper_lexical_share=0.4, candidate_chunks=70, chunks_per_paper=2
    )
    params = FusionParams.from_settings(settings)
    assert (params.method, params.dense_weight, params.paper_share) == ("rrf", 0.3, 0.4)
    assert (params.candidates, params.chunks_per_paper) == (70, 2)
