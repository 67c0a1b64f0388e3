"""Removing papers (the app's remove button) records the removed chunks in the changelog, so readers absorb the removal
instead of rebuilding BM25 from the whole collection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.index.lexical import LexicalCache, LexicalIndex
from assistant.index.paths import lexical_folder
from assistant.index.store import open_store
from ingest.loaders import LoadReport, load_path, sample_corpus_path
from ingest.pipeline import ingest_report, remove_papers
from tests.conftest import make_settings


def test_a_removal_reaches_readers_through_the_changelog(tmp_path: Path, embedder: Any) -> None:
    papers = load_path(sample_corpus_path()).papers[:8]
    s = make_settings(tmp_path)
    ingest_report(s, LoadReport(papers=papers), embedder=embedder)
    store = open_store(s, embedder.name, embedder.dim)
    try:
        # A reader whose index lives elsewhere: the removal's own index update does not touch it.
        reader = LexicalCache(store, tmp_path / "reader-index", recheck_s=0.0)
        before = reader.refresh()
        assert reader.rebuilds == 1  # its first index, built from the whole collection
        gone = papers[2].id
        gone_chunks = set(store.chunk_ids([gone]))
        start = store.revision

        assert remove_papers(s, [gone], store=store) == 1

        change = store.changes_since(start, store.revision)
        assert change is not None and change.removed == gone_chunks and not change.added
        after = reader.refresh()
        assert after.revision == store.revision
        assert reader.rebuilds == 1 and reader.fetched == 0  # absorbed from the log: nothing re-read, nothing fetched
        assert set(after.ids) == set(before.ids) - gone_chunks
        fresh = LexicalIndex.from_store(store)
        for query in (papers[2].title, papers[3].title, "protein folding"):
            assert after.search(query, 50) == fresh.search(query, 50), query
        # The remover's own saved index is up to date too, and was updated rather than rebuilt.
        saved = LexicalIndex.load(lexical_folder(s))
        assert saved is not None and saved.revision == store.revision and set(saved.ids) == set(after.ids)
    finally:
        store.close()
