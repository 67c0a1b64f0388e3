"""A stale BM25 index is replaced in the background: queries keep answering from the index they have meanwhile."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Settings
from assistant.index.lexical import LexicalCache, LexicalIndex
from assistant.index.paths import lexical_folder
from assistant.index.store import ChunkStore, open_store
from assistant.retrieval.retriever import Retriever
from ingest.loaders import LoadReport, load_path, sample_corpus_path
from tests.conftest import make_settings

FIRST, LATER = 10, 6


class GatedBuild:
    """The real build from the store, held at its start until the test opens the gate (this unit's edge case:
    a build still running while queries arrive)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.gate = threading.Event()
        self.calls = 0
        self.fail: BaseException | None = None

    def __call__(self, store: ChunkStore) -> LexicalIndex:
        self.calls += 1
        self.started.set()
        assert self.gate.wait(600), "the test never opened the gate"
        if self.fail is not None:
            raise self.fail
        return LexicalIndex.from_store(store)


@pytest.fixture
def stores(tmp_path: Path, embedder: Any) -> Any:
    """A store holding the first sample papers, and settings that write elsewhere for the later ones: (settings, later
    settings, store, later papers). Ingests under the later settings leave the cache's saved index stale, so its
    refresh has to build from the store."""
    from ingest.pipeline import ingest_report

    papers = load_path(sample_corpus_path()).papers[: FIRST + LATER]
    s = make_settings(tmp_path)
    later = s.model_copy(update={"index_dir": tmp_path / "other-index"})
    ingest_report(s, LoadReport(papers=papers[:FIRST]), embedder=embedder)
    store = open_store(s, embedder.name, embedder.dim)
    yield s, later, store, papers[FIRST:]
    store.close()


def _bm25_papers(cache: LexicalCache, query: str) -> set[str]:
    return {cid.rsplit(":", 1)[0] for cid, _ in cache.get().search(query, 50)}


def test_queries_answer_from_the_old_index_while_a_new_one_builds(
    stores: tuple[Settings, Settings, ChunkStore, list[Any]], embedder: Any
) -> None:
    from ingest.pipeline import ingest_report

    s, later, store, new_papers = stores
    build = GatedBuild()
    cache = LexicalCache(store, lexical_folder(s), recheck_s=3600, build=build)
    retriever = Retriever(store, embedder, cache)
    old = cache.get()  # the first load: the ingest saved a matching index, so nothing is built
    assert build.calls == 0 and len({c.rsplit(":", 1)[0] for c in old.ids}) == FIRST

    ingest_report(later, LoadReport(papers=new_papers), embedder=embedder)  # a write by this process
    store.bump_revision()  # no change recorded: the changelog cannot bring the index up to date
    titles = [p.title for p in new_papers]
    new_ids = {p.id for p in new_papers}
    noticed: list[LexicalIndex] = []
    answered: list[tuple[str, set[str], list[str]]] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            noticed.append(cache.get())  # notices the write and starts the refresh
            assert build.started.wait(60), "no refresh started"
            for title in titles:  # while the build is held at the gate
                hits = retriever.search(title, 5)
                answered.append((title, _bm25_papers(cache, title), [h.paper_id for h in hits]))
        except BaseException as exc:
            errors.append(exc)

    try:
        asker = threading.Thread(target=ask)
        asker.start()
        asker.join(120)  # the gate stays shut: queries that waited for the build would still be running
        assert not asker.is_alive(), "queries waited for the rebuild"
        assert build.calls == 1 and not build.gate.is_set()
    finally:
        build.gate.set()
    assert not errors, repr(errors[0])
    assert len(noticed) == 1 and noticed[0] is old
    assert len(answered) == len(titles)
    for _title, lexical, hits in answered:
        assert hits
        assert not lexical & new_ids  # BM25 answers from the old index
    assert any(lexical for _, lexical, _ in answered)

    fresh = cache.wait(120)
    assert fresh is not None and fresh is not old and build.calls == 1
    assert fresh.revision == store.revision and fresh.count == store.count()
    assert cache.get() is fresh
    found = sum(p.id in _bm25_papers(cache, p.title) for p in new_papers)
    assert found == len(new_papers)


def test_a_failed_refresh_keeps_the_old_index_and_the_next_notice_retries(
    stores: tuple[Settings, Settings, ChunkStore, list[Any]], embedder: Any
) -> None:
    from assistant.errors import StoreError
    from ingest.pipeline import ingest_report

    s, later, store, new_papers = stores
    build = GatedBuild()
    cache = LexicalCache(store, lexical_folder(s), recheck_s=3600, build=build)
    old = cache.get()
    ingest_report(later, LoadReport(papers=new_papers[:2]), embedder=embedder)
    store.bump_revision()  # no change recorded: the changelog cannot bring the index up to date
    build.fail = StoreError("the store went away")
    build.gate.set()
    assert cache.get() is old
    assert cache.wait(120) is old and build.calls == 1
    assert cache.get() is old  # noticed already: no new attempt before the recheck or another write

    build.fail = None
    cache.recheck_s = 0.0
    assert cache.get() is old
    fresh = cache.wait(120)
    assert fresh is not None and fresh.revision == store.revision and build.calls == 2
