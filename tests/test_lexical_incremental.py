"""The lexical index follows the collection's changelog: it absorbs only the chunks that changed, and scores exactly
as a full rebuild of the same chunks would."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from assistant.index.changelog import Change, Changelog
from assistant.index.lexical import LexicalCache, LexicalIndex
from assistant.index.paths import lexical_folder
from assistant.index.store import ChunkStore, open_store
from ingest.loaders import LoadReport, load_path, sample_corpus_path
from tests.conftest import make_settings

WORDS = (
    "graph",
    "neural",
    "network",
    "attention",
    "protein",
    "folding",
    "cell",
    "cancer",
    "gene",
    "mouse",
    "model",
    "reasoning",
    "language",
    "code",
    "the",
    "of",
)
QUERIES = ("graph attention", "zebra cell", "protein protein folding", "language model code", "nothing-here")


def _texts(n: int, seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    return {f"p{seed}-{i}:0": " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 40))) for i in range(n)}


def assert_same_results(got: LexicalIndex, want: LexicalIndex, queries: tuple[str, ...] = QUERIES) -> None:
    """Same chunks found, same scores (to float rounding), for every query."""
    assert sorted(got.ids) == sorted(want.ids)
    for query in queries:
        a, b = dict(got.search(query, 10_000)), dict(want.search(query, 10_000))
        assert a.keys() == b.keys(), query
        assert all(a[k] == pytest.approx(b[k], rel=1e-9) for k in a), query


def test_absorbed_changes_score_as_a_full_rebuild(tmp_path: Path) -> None:
    """Adds, removals and rewrites over several updates, saved and loaded between them, with and without a merge."""
    base = _texts(400, 1)
    index = LexicalIndex.build(list(base), list(base.values()), 1)
    corpus = dict(base)
    rng = random.Random(7)
    for revision, n_new in enumerate((30, 5, 60, 25), start=2):
        new = _texts(n_new, revision * 10)
        rewritten = {cid: "zebra " + corpus[cid] for cid in rng.sample(sorted(corpus), 8)}
        removed = rng.sample(sorted(set(corpus) - set(rewritten)), 12)
        index = index.apply([*removed, "never-indexed:0"], {**new, **rewritten}, revision)
        for cid in removed:
            del corpus[cid]
        corpus.update(new)
        corpus.update(rewritten)
        index.save(tmp_path / "index")
        loaded = LexicalIndex.load(tmp_path / "index")
        assert loaded is not None and loaded.revision == revision
        full = LexicalIndex.build(list(corpus), list(corpus.values()), revision)
        assert_same_results(index, full)
        assert_same_results(loaded, full)
        index = loaded
    assert len(index.bm25.segments) > 1  # deltas were absorbed without merging them all away
    merged = LexicalIndex(index.bm25.merged(), index.revision, index.count)
    assert len(merged.bm25.segments) == 1
    assert_same_results(merged, LexicalIndex.build(list(corpus), list(corpus.values()), 5))


def test_scores_are_bm25s_scores() -> None:
    """The segmented index scores as the bm25s index it replaced, after an update as well."""
    base, new = _texts(200, 3), _texts(40, 4)
    index = LexicalIndex.build(list(base), list(base.values()), 1).apply(list(base)[:10], new, 2)
    index = LexicalIndex(index.bm25.merged(), 2, index.count)  # one segment, no dead slots: the engine's documents
    engine = index.engine
    for query in QUERIES:
        tokens = LexicalIndex.tokenize([query])[0]
        term_ids = [engine.vocab_dict[t] for t in tokens if t in engine.vocab_dict]
        if not term_ids:
            assert index.search(query, 10) == []
            continue
        expected = engine.get_scores_from_ids(term_ids)
        got = dict(index.search(query, 10_000))
        ids = list(index.ids)
        assert {ids[i] for i in range(len(ids)) if expected[i] > 0} == set(got)
        assert all(got[ids[i]] == pytest.approx(float(expected[i]), rel=1e-5) for i in range(len(ids)) if expected[i] > 0)


@pytest.fixture
def stores(tmp_path: Path, embedder: Any) -> Any:
    """A store holding 8 sample papers, and settings that write a different index folder: (settings, later, store,
    the other papers). Ingests under `later` leave the cache's saved index behind, so the cache must catch up."""
    from ingest.pipeline import ingest_report

    papers = load_path(sample_corpus_path()).papers
    s = make_settings(tmp_path)
    later = s.model_copy(update={"index_dir": tmp_path / "other-index"})
    ingest_report(s, LoadReport(papers=papers[:8]), embedder=embedder)
    store = open_store(s, embedder.name, embedder.dim)
    yield s, later, store, papers[8:]
    store.close()


def test_a_reader_fetches_only_the_changed_chunks(stores: tuple[Any, Any, ChunkStore, list[Any]], embedder: Any) -> None:
    from dataclasses import replace

    from ingest.pipeline import ingest_report

    s, later, store, more = stores
    cache = LexicalCache(store, lexical_folder(s), recheck_s=0.0)
    first = cache.get()
    assert cache.rebuilds == 0 and cache.fetched == 0  # the ingest saved a matching index

    ingest_report(later, LoadReport(papers=more[:4]), embedder=embedder)
    new_chunks = [cid for cid in store.chunk_ids([p.id for p in more[:4]])]
    caught_up = cache.refresh()
    assert caught_up.revision == store.revision and cache.rebuilds == 0
    assert cache.fetched == len(new_chunks)  # the 8 papers already indexed were not fetched again
    assert_same_results(caught_up, LexicalIndex.from_store(store), (*QUERIES, *(p.title for p in more[:4])))
    assert set(caught_up.ids) == set(first.ids) | set(new_chunks)

    # A changed paper and a pruned one: the rewrite is fetched, the pruned paper's chunks leave without a fetch.
    changed = replace(more[0], abstract=more[0].abstract + " Zygomorphic flowers are discussed at length.")
    kept = [p for p in load_path(sample_corpus_path()).papers[:8] if p.id != first.ids[0].rsplit(":", 1)[0]]
    before = cache.fetched
    ingest_report(later, LoadReport(papers=[*kept, changed, *more[1:4]]), embedder=embedder, options=_prune())
    caught_up = cache.refresh()
    assert cache.rebuilds == 0 and cache.fetched - before == len(store.chunk_ids([changed.id]))
    assert_same_results(caught_up, LexicalIndex.from_store(store), (*QUERIES, "zygomorphic flowers", changed.title))
    assert caught_up.search("zygomorphic", 3)[0][0].startswith(f"{changed.id}:")

    store.bump_revision()  # a bump that records no change: the next refresh has to rebuild
    assert cache.refresh().revision == store.revision and cache.rebuilds == 1


def _prune() -> Any:
    from ingest.pipeline import IngestOptions

    return IngestOptions(prune=True)


def test_the_changelog_says_when_it_cannot_reach_back(stores: tuple[Any, Any, ChunkStore, list[Any]], embedder: Any) -> None:
    from ingest.pipeline import ingest_report

    s, later, store, more = stores
    log, owner = Changelog(store.client, store.name), store.collection_id
    start = store.revision
    ingest_report(later, LoadReport(papers=more[:2]), embedder=embedder)
    assert store.revision == start + 2  # one bump when writing starts, one when done
    change = store.changes_since(start, store.revision)
    assert change is not None and change.added == frozenset(store.chunk_ids([p.id for p in more[:2]]))
    assert store.changes_since(start + 1, store.revision) == change  # the done entry repeats the intent's ids

    log.prune(owner, store.revision)  # the oldest entries are gone: a reader that far behind rebuilds
    assert store.changes_since(start, store.revision) is None
    assert store.changes_since(store.revision - 1, store.revision) == change

    cache = LexicalCache(store, lexical_folder(s))
    assert cache.refresh().revision == store.revision and cache.rebuilds == 1  # the saved index was too old


def test_an_ingest_killed_after_its_intent_is_carried_by_the_next(stores: tuple[Any, Any, ChunkStore, list[Any]]) -> None:
    """Chunks a killed writer planned are listed again by the next writer, so readers that saw the intent mid-write
    still fetch what was written after they looked."""
    _, _, store, _ = stores
    killed = Change(added=frozenset({"killed:0", "killed:1"}))
    store.bump_revision(killed, done=False)  # then the writer died
    later = Change(added=frozenset({"next:0"}), removed=frozenset({"gone:0"}))
    start = store.revision
    store.bump_revision(later, done=False)
    store.bump_revision(later)
    assert store.changes_since(start, store.revision) == killed | later
