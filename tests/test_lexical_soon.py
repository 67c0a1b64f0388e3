"""The BM25 searches run on a search thread beside the dense search; the caller gets the same results and errors."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from assistant.index.lexical import LexicalCache, LexicalIndex
from assistant.index.paths import lexical_folder
from assistant.index.store import open_store
from assistant.retrieval.retriever import Retriever
from ingest.loaders import LoadReport, load_path, sample_corpus_path
from ingest.pipeline import ingest_report
from tests.conftest import make_settings


def test_bm25_runs_on_a_search_thread_with_the_same_results(tmp_path: Path, embedder: Any) -> None:
    papers = load_path(sample_corpus_path()).papers[:6]
    s = make_settings(tmp_path)
    ingest_report(s, LoadReport(papers=papers), embedder=embedder)
    store = open_store(s, embedder.name, embedder.dim)
    try:
        cache = LexicalCache(store, lexical_folder(s))
        query = papers[1].title
        threads: list[str] = []

        def search(index: LexicalIndex) -> list[tuple[str, float]]:
            threads.append(threading.current_thread().name)
            return index.search(query, 20)

        found = cache.soon(search).result()
        assert found and found == cache.get().search(query, 20)
        assert threads[0].startswith("bm25-search") and threads[0] != threading.current_thread().name
        with pytest.raises(ZeroDivisionError):  # a failed search reaches the caller, as it did when it ran inline
            cache.soon(lambda _index: 1 / 0).result()

        hits = Retriever(store, embedder, cache).search(query, 3)
        best = max(score for cid, score in found if cid.rsplit(":", 1)[0] == hits[0].paper_id)
        assert hits[0].paper_id == papers[1].id and hits[0].lexical == best  # the chunk BM25 list reached fusion
    finally:
        store.close()
