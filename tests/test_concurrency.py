"""Eight threads asking questions against a Chroma server collection while an ingest writes into it."""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Settings
from ingest.loaders import LoadReport, load_text
from tests.conftest import SHARED, make_settings

SCIFACT = SHARED / "data" / "scifact"
PRELOADED, INGESTED, THREADS = 100, 60, 8
MAX_ROUNDS = 40  # per thread; a thread stops earlier once the ingest is over and it has done a round after it


def _short(line: str) -> str:
    """A BEIR record with its abstract cut to about 400 characters, so each paper is one chunk and embeds fast."""
    record = json.loads(line)
    text = record["text"]
    cut = text.find(". ", 300)
    record["text"] = text if cut < 0 else text[: cut + 1]
    return json.dumps(record) + "\n"


def scifact_reports() -> tuple[LoadReport, LoadReport]:
    """The first 100 SciFact papers (preloaded) and the next 60 (ingested during the test), abstracts shortened."""
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as f:
        lines = [_short(line) for line in itertools.islice(f, PRELOADED + INGESTED)]
    first = load_text("".join(lines[:PRELOADED]), "scifact-first.jsonl", "beir")
    second = load_text("".join(lines[PRELOADED:]), "scifact-second.jsonl", "beir")
    assert len(first.papers) == PRELOADED and len(second.papers) == INGESTED
    return first, second


def questions(n: int = 16) -> list[str]:
    """SciFact claims as questions."""
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in itertools.islice(f, n)]


def server_settings(tmp: Path, chroma_server: tuple[str, int, Path]) -> Settings:
    """A fresh collection on the session's Chroma server, BM25 index in the temporary folder."""
    host, port, _ = chroma_server
    return make_settings(tmp, chroma_host=host, chroma_port=port, collection=f"conc-{uuid.uuid4().hex[:12]}")


@pytest.mark.server
@pytest.mark.slow
def test_questions_during_ingest(tmp_path: Path, chroma_server: tuple[str, int, Path], embedder: Any) -> None:
    """No errors, every paper id returned exists in one of the corpora, and the new papers are found afterwards."""
    from assistant import build_assistant
    from ingest.pipeline import ingest_report

    first, second = scifact_reports()
    s = server_settings(tmp_path, chroma_server)
    ingest_report(s, first, embedder=embedder)
    known = {p.id for p in first.papers} | {p.id for p in second.papers}
    assistant = build_assistant(s, embedder=embedder)
    asked = questions()

    errors: list[BaseException] = []
    returned: set[str] = set()
    lock = threading.Lock()
    warmed = threading.Barrier(THREADS + 1)
    ingest_done = threading.Event()
    rounds = [0] * THREADS

    def worker(i: int) -> None:
        after_ingest = 0
        try:
            for r in range(MAX_ROUNDS):
                q = asked[(i + r * THREADS) % len(asked)]
                if (i + r) % 2:
                    ids = [h.paper_id for h in assistant.retriever.search(q, 5)]
                else:
                    plan = assistant.plan(q, mode="ask")
                    ids = [h.paper_id for h in plan.hits] + [e.paper_id for e in plan.evidence]
                with lock:
                    returned.update(ids)
                rounds[i] += 1
                if r == 0:
                    warmed.wait(120)
                if ingest_done.is_set():
                    after_ingest += 1
                    if after_ingest >= 2:
                        return
        except BaseException as exc:  # every failure is reported by the main thread
            with lock:
                errors.append(exc)
            warmed.abort()

    workers = [threading.Thread(target=worker, args=(i,), name=f"asker-{i}") for i in range(THREADS)]
    for t in workers:
        t.start()
    warmed.wait(120)  # every thread has answered once before the ingest starts, so they overlap it
    try:
        summary = ingest_report(s, second, embedder=embedder)
    finally:
        ingest_done.set()
        for t in workers:
            t.join(600)
    assert not any(t.is_alive() for t in workers)
    assert not errors, f"{len(errors)} thread(s) failed; first: {errors[0]!r}"
    assert summary.added == INGESTED
    assert returned and returned <= known, f"unknown paper ids returned: {sorted(returned - known)[:5]}"
    assert all(r >= 2 for r in rounds)

    # The same Assistant sees the new papers once the ingest is over: the first query after it starts a BM25 refresh
    # (and is answered by the index it has; the askers may have finished their rounds before the ingest did).
    assert assistant.stats()["papers"] == PRELOADED + INGESTED
    assistant.retriever.search(second.papers[0].title, 3)
    refreshed = assistant.retriever.lexical.wait(300)
    assert refreshed is not None and refreshed.revision == assistant.store.revision
    found = 0
    for paper in second.papers[:5]:
        hits = assistant.retriever.search(paper.title, 3)
        found += paper.id in {h.paper_id for h in hits}
    assert found >= 4


@pytest.mark.server
@pytest.mark.slow
def test_bm25_hits_for_chunks_not_in_store_are_dropped(
    tmp_path: Path, chroma_server: tuple[str, int, Path], embedder: Any
) -> None:
    """An index that knows chunks the store does not hold (yet, or any more) yields no error and no unknown paper."""
    from assistant import build_assistant
    from assistant.index.lexical import LexicalIndex
    from assistant.index.paths import lexical_folder
    from assistant.index.store import open_store
    from ingest.pipeline import ingest_report

    first, second = scifact_reports()
    s = server_settings(tmp_path, chroma_server)
    ingest_report(s, LoadReport(papers=first.papers[:10]), embedder=embedder)
    store = open_store(s, embedder.name, embedder.dim)
    ids, texts = [], []
    for chunk_id, document, _ in store.iter_chunks():
        ids.append(chunk_id)
        texts.append(document or "")
    ghosts = second.papers[:3]  # indexed, but never written to the store
    ids += [f"{p.id}:0" for p in ghosts]
    texts += [f"{p.title}\n{p.abstract}" for p in ghosts]
    # What a reader holds when the index runs ahead of the store: saved as matching the store, so the cache loads it.
    ahead = replace(LexicalIndex.build(ids, texts, store.revision, store.collection_id), count=store.count())
    ahead.save(lexical_folder(s))
    assistant = build_assistant(s, embedder=embedder)
    cache = assistant.retriever.lexical

    stored = {p.id for p in first.papers[:10]}
    for ghost in ghosts:
        assert ghost.id in {cid.rsplit(":", 1)[0] for cid, _ in cache.get().search(ghost.title, 5)}
        rows = assistant.retriever.bm25(ghost.title, 5)
        assert {p.paper_id for p, _ in rows} <= stored
        hits = assistant.retriever.search(ghost.title, 5)
        assert hits and {h.paper_id for h in hits} <= stored
        plan = assistant.plan(ghost.title, mode="ask")
        assert {e.paper_id for e in plan.evidence} <= stored


def test_concurrent_index_saves_and_loads(tmp_path: Path) -> None:
    """An ingest's rebuild and readers refreshing a stale index may save the same folder at once: no errors, no mixed index."""
    from assistant.index.lexical import LexicalIndex

    folder = tmp_path / "index"
    small = LexicalIndex.build([f"a{i}:0" for i in range(20)], [f"alpha topic {i} graphs" for i in range(20)], 1)
    large = LexicalIndex.build([f"b{i}:0" for i in range(300)], [f"beta topic {i} graphs" for i in range(300)], 2)
    errors: list[BaseException] = []

    def writer(index: LexicalIndex) -> None:
        try:
            for _ in range(15):
                index.save(folder)
                loaded = LexicalIndex.load(folder)
                if loaded is not None:  # None only while another writer is mid-swap; the caller rebuilds then
                    assert (loaded.revision, len(loaded.ids)) in {(1, 20), (2, 300)}
                    hits = loaded.search("graphs topic", 400)
                    assert len(hits) == len(loaded.ids)
                    assert {cid[0] for cid, _ in hits} == {"a" if loaded.revision == 1 else "b"}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(idx,)) for idx in (small, large, small, large)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, repr(errors[0])
    final = LexicalIndex.load(folder)
    assert final is not None and final.revision in (1, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # no staging folders left behind
