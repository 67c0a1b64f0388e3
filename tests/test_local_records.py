"""The lexical index keeps each chunk's stored record, so a query's returned papers need no second round trip to the
store; it serves them only while it is at the store's revision, and the store answers otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from assistant.index import lexical
from assistant.index.lexical import LexicalCache, LexicalIndex
from assistant.index.paths import lexical_folder
from assistant.index.store import ChunkStore, open_store
from assistant.models import Passage
from assistant.retrieval.retriever import Retriever
from ingest.loaders import LoadReport, load_path, sample_corpus_path
from ingest.pipeline import ingest_report, remove_papers
from tests.conftest import ROOT, make_settings


def _fields(p: Passage) -> tuple[Any, ...]:
    return p.chunk_id, p.paper_id, p.title, p.text, p.score, p.dense, p.lexical, p.metadata


def assert_served_as_stored(index: LexicalIndex, store: ChunkStore, extra: Sequence[str] = ()) -> None:
    """Every stored chunk's record from the index equals the store's Passage; `extra` ids (gone) are not served."""
    ids = [cid for cid, _, _ in store.iter_chunks()]
    assert sorted(ids) == sorted(index.ids)
    local = index.passages([*ids, *extra])
    assert sorted(local) == sorted(ids)  # every live chunk has its record, removed ones none
    for p in store.get(ids):
        assert _fields(local[p.chunk_id]) == _fields(p), p.chunk_id


@pytest.mark.parametrize("merge", [True, False], ids=["merged", "segments"])
def test_records_equal_the_store_built_updated_and_loaded(
    tmp_path: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch, merge: bool
) -> None:
    if not merge:  # keep every update as its own segment, whose records are saved beside it
        monkeypatch.setattr(lexical, "MERGE_SHARE", 100.0)
    papers = load_path(sample_corpus_path()).papers[:14]
    s = make_settings(tmp_path)
    ingest_report(s, LoadReport(papers=papers[:8]), embedder=embedder)
    store = open_store(s, embedder.name, embedder.dim)
    try:
        folder = tmp_path / "reader-index"  # the ingests update their own index, not this reader's
        reader = LexicalCache(store, folder, recheck_s=0.0)
        built = reader.refresh()
        assert_served_as_stored(built, store)
        base = built.bm25.segments[0].name
        first = (folder / f"{base}.records.bin").stat().st_ino

        rewritten = replace(papers[0], title="Rewritten: " + papers[0].title, abstract=papers[0].abstract + " Amended.")
        ingest_report(s, LoadReport(papers=[rewritten, *papers[8:]]), embedder=embedder)
        assert_served_as_stored(reader.refresh(), store)
        gone = [papers[2].id, papers[9].id]
        gone_chunks = store.chunk_ids(gone)
        assert remove_papers(s, gone, store=store) == 2
        updated = reader.refresh()
        assert reader.rebuilds == 1 and reader.fetched > 0  # absorbed from the changelog, not rebuilt
        assert len(updated.bm25.segments) == (1 if merge else 2)
        assert_served_as_stored(updated, store, gone_chunks)
        assert updated.passages([f"{papers[0].id}:0"])[f"{papers[0].id}:0"].title == rewritten.title
        if not merge:  # an update wrote only its new segment: the base's records are the same file
            assert (folder / f"{base}.records.bin").stat().st_ino == first

        loaded = LexicalIndex.load(folder)
        assert loaded is not None and loaded.revision == store.revision
        assert_served_as_stored(loaded, store, gone_chunks)
    finally:
        store.close()


def test_an_index_saved_without_records_is_rebuilt(tmp_path: Path, embedder: Any) -> None:
    s = make_settings(tmp_path)
    ingest_report(s, LoadReport(papers=load_path(sample_corpus_path()).papers[:4]), embedder=embedder)
    folder = lexical_folder(s)
    manifest = json.loads((folder / "chunks.json").read_text())
    del manifest["records"]  # what a save before records looked like
    (folder / "chunks.json").write_text(json.dumps(manifest))
    assert LexicalIndex.load(folder) is None
    store = open_store(s, embedder.name, embedder.dim)
    try:
        cache = LexicalCache(store, folder)
        assert_served_as_stored(cache.refresh(), store)
        assert cache.rebuilds == 1
        loaded = LexicalIndex.load(folder)
        assert loaded is not None and loaded.passages(list(loaded.ids)).keys() == set(loaded.ids)
    finally:
        store.close()


def _remove_in_another_process(s: Any, paper_id: str, index_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(
        ASSISTANT_CHROMA_HOST=str(s.chroma_host),
        ASSISTANT_CHROMA_PORT=str(s.chroma_port),
        ASSISTANT_COLLECTION=s.collection,
        ASSISTANT_INDEX_DIR=str(index_dir),
        ANONYMIZED_TELEMETRY="False",
    )
    code = "import sys; from assistant.config import Settings; from ingest.pipeline import remove_papers; "
    code += "assert remove_papers(Settings(_env_file=None), [sys.argv[1]]) == 1"
    subprocess.run([sys.executable, "-c", code, paper_id], cwd=ROOT, env=env, check=True, timeout=300)


@pytest.mark.server
def test_search_skips_the_round_trip_only_while_the_index_is_current(
    tmp_path: Path, chroma_server: tuple[str, int, Path], embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, port, _ = chroma_server
    s = make_settings(tmp_path, chroma_host=host, chroma_port=port, collection=f"records-{uuid.uuid4().hex[:12]}")
    papers = load_path(sample_corpus_path()).papers[:10]
    ingest_report(s, LoadReport(papers=papers), embedder=embedder)
    store = open_store(s, embedder.name, embedder.dim)
    gate = threading.Event()
    try:
        gets: list[list[str]] = []
        real_get = store.get

        def counted(ids: Sequence[str]) -> list[Passage]:
            gets.append(list(ids))
            return real_get(ids)

        monkeypatch.setattr(store, "get", counted)
        # Every query reads the revision (recheck_s 0); the catch-up after another process's write is held at a gate,
        # so that the queries in between meet a stale index (this unit's edge case), then let through.
        real_changes = store.changes_since

        def gated(revision: int, current: int) -> Any:
            assert gate.wait(300), "the test never opened the gate"
            return real_changes(revision, current)

        monkeypatch.setattr(store, "changes_since", gated)
        cache = LexicalCache(store, lexical_folder(s), recheck_s=0.0)
        retriever = Retriever(store, embedder, cache)
        doomed = papers[3]
        hits = retriever.search(doomed.title, 3)
        assert hits[0].paper_id == doomed.id and not gets  # records served by the index: no second round trip
        stored = {p.chunk_id: p for p in real_get([h.passages[0].chunk_id for h in hits])}
        for hit in hits:
            want = stored[hit.passages[0].chunk_id]
            assert len(hit.passages) == 1 and _fields(hit.passages[0]) == _fields(want)
            assert (hit.title, hit.metadata) == (want.title, want.metadata)

        _remove_in_another_process(s, doomed.id, tmp_path / "writer-index")
        assert doomed.id in {cid.rsplit(":", 1)[0] for cid, _ in cache.get().search(doomed.title, 5)}  # BM25 still has it
        stale = retriever.search(doomed.title, len(papers))  # every paper either list found: BM25 still finds the doomed one
        assert doomed.id not in {h.paper_id for h in stale}  # the deleted paper dropped out at the store
        assert gets, "records were served by an index the store had moved past"

        gate.set()
        caught_up = cache.wait(300)
        assert caught_up is not None and caught_up.revision == store.revision
        gets.clear()
        fresh = retriever.search(doomed.title, 3)
        assert not gets and doomed.id not in {h.paper_id for h in fresh}
    finally:
        gate.set()  # a failed check must not leave the refresh waiting
        store.close()
