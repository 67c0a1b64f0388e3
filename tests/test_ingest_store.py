"""Idempotent ingest into a real on-disk Chroma store, with the real MiniLM embedder."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Settings
from assistant.index.lexical import LexicalIndex, index_is_fresh
from assistant.index.paths import lexical_folder
from assistant.index.store import ChunkStore, open_store
from assistant.models import Chunk, Paper
from ingest.chunking import chunk_paper, embedding_text, token_counter
from ingest.loaders import LoadReport, load_path, sample_corpus_path
from ingest.pipeline import IngestOptions, ingest_report
from ingest.sync import stored_hash
from tests.conftest import ROOT, make_settings

# Vectors of texts the real model has embedded this session, shared by the ingest test modules so
# the same sample chunks are not embedded again for every fresh store.
VECTORS: dict[str, list[float]] = {}


class CountingEmbedder:
    """Delegates to the real embedder and counts what it is asked; `cache` skips texts seen before."""

    def __init__(self, inner: Any, cache: dict[str, list[float]] | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.cache = cache
        self.calls = 0
        self.texts = 0
        self.computed = 0

    @property
    def dim(self) -> int:
        return int(self.inner.dim)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        self.texts += len(texts)
        if self.cache is None:
            self.computed += len(texts)
            return list(self.inner.embed(texts))
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            self.cache.update(zip(missing, self.inner.embed(missing), strict=True))
            self.computed += len(missing)
        return [self.cache[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text])[0]


def sample_papers() -> list[Paper]:
    return list(load_path(sample_corpus_path()).papers)


def expected_chunks(papers: Sequence[Paper], s: Settings) -> dict[str, list[Chunk]]:
    count = token_counter()
    return {p.id: chunk_paper(p, s.chunk_tokens, s.chunk_overlap, count) for p in papers}


def snapshot(store: ChunkStore) -> dict[str, tuple[str, str, int, int, str]]:
    """Chunk id -> (paper id, hash, n, n_chunks, document) for everything stored."""
    out = {}
    for chunk_id, document, meta in store.iter_chunks():
        assert chunk_id not in out, f"duplicate id {chunk_id}"
        out[chunk_id] = (str(meta["paper_id"]), str(meta["hash"]), int(meta["n"]), int(meta["n_chunks"]), document)
    return out


def assert_store_matches(store: ChunkStore, papers: Sequence[Paper], s: Settings) -> None:
    """The store holds exactly these papers, each chunked and hashed as the settings say."""
    expected = expected_chunks(papers, s)
    by_id = {p.id: p for p in papers}
    want = {}
    for pid, chunks in expected.items():
        paper = by_id[pid]
        digest = stored_hash(paper, s.chunk_tokens, s.chunk_overlap)
        for c in chunks:
            want[c.id] = (pid, digest, c.n, len(chunks), embedding_text(paper.title, c.text))
    got = snapshot(store)
    assert set(got) - set(want) == set(), "chunks stored that should not be"
    assert set(want) - set(got) == set(), "chunks missing"
    assert got == want
    assert store.count() == len(want)
    spans = {cid: json.loads(meta["spans"]) for cid, _, meta in store.iter_chunks()}
    for chunks in expected.values():
        for c in chunks:
            assert [tuple(x) for x in spans[c.id]] == list(c.spans)


@pytest.fixture
def open_embedded() -> Iterator[Any]:
    """Opens embedded stores for a test and closes them after it, so later opens read the disk afresh."""
    opened: list[ChunkStore] = []

    def _open(s: Settings, model: str = "all-MiniLM-L6-v2", dim: int = 384) -> ChunkStore:
        store = open_store(s, model, dim)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


def ingest(s: Settings, papers: Sequence[Paper], emb: Any, store: ChunkStore | None = None, **options: Any) -> Any:
    return ingest_report(s, LoadReport(papers=list(papers)), IngestOptions(**options), embedder=emb, store=store)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[tuple[Settings, Any, CountingEmbedder]]:  # type: ignore[no-untyped-def]
    """The sample ingested once into a fresh on-disk store: (settings, summary, counting embedder)."""
    s = make_settings(tmp_path_factory.mktemp("idempotent"))
    counting = CountingEmbedder(embedder, VECTORS)
    summary = ingest(s, sample_papers(), counting)
    yield s, summary, counting


@pytest.fixture
def fresh(tmp_path: Path, embedder, open_embedded) -> tuple[Settings, ChunkStore, CountingEmbedder]:  # type: ignore[no-untyped-def]
    """A store of its own with the sample ingested (from cached vectors when this session has them)."""
    s = make_settings(tmp_path)
    store = open_embedded(s)
    ingest(s, sample_papers(), CountingEmbedder(embedder, VECTORS), store)
    return s, store, CountingEmbedder(embedder, VECTORS)


def test_first_ingest_adds_every_paper(first_run, open_embedded) -> None:  # type: ignore[no-untyped-def]
    s, summary, counting = first_run
    papers = sample_papers()
    total = sum(len(c) for c in expected_chunks(papers, s).values())
    assert (summary.added, summary.updated, summary.unchanged, summary.removed) == (72, 0, 0, 0)
    assert summary.chunks == total
    assert counting.calls >= 1 and counting.texts == total
    store = open_embedded(s)
    assert_store_matches(store, papers, s)
    assert len(store.papers()) == 72
    assert index_is_fresh(store, lexical_folder(s))
    index = LexicalIndex.load(lexical_folder(s))
    assert index is not None and sorted(index.ids) == sorted(snapshot(store))


def test_second_ingest_changes_nothing_and_embeds_nothing(first_run, embedder, open_embedded) -> None:  # type: ignore[no-untyped-def]
    s, _, _ = first_run
    store = open_embedded(s)
    before, revision = snapshot(store), store.revision
    counting = CountingEmbedder(embedder)  # no cache: any call would reach the real model
    summary = ingest(s, sample_papers(), counting, store)
    assert (summary.added, summary.updated, summary.unchanged, summary.removed, summary.chunks) == (0, 0, 72, 0, 0)
    assert counting.calls == 0
    assert snapshot(store) == before
    assert store.revision == revision


def test_changed_abstract_replaces_the_old_chunks(fresh) -> None:  # type: ignore[no-untyped-def]
    s, store, counting = fresh
    papers = sample_papers()
    chunks = expected_chunks(papers, s)
    target = max(papers, key=lambda p: len(chunks[p.id]))
    assert len(chunks[target.id]) >= 3
    changed = dataclasses.replace(target, abstract="We replace this abstract with one zygomorphic sentence.")
    new_input = [changed if p.id == target.id else p for p in papers]
    before = snapshot(store)

    summary = ingest(s, new_input, counting, store)

    assert (summary.added, summary.updated, summary.unchanged, summary.removed, summary.chunks) == (0, 1, 71, 0, 1)
    assert counting.texts == 1
    after = snapshot(store)
    assert [cid for cid in after if cid.startswith(f"{target.id}:")] == [f"{target.id}:0"]
    leftovers = [f"{target.id}:{n}" for n in range(1, len(chunks[target.id]))]
    assert store.get(leftovers) == []
    assert {k: v for k, v in after.items() if k.split(":")[0] != target.id} == {
        k: v for k, v in before.items() if not k.startswith(target.id)
    }
    assert_store_matches(store, new_input, s)
    # The BM25 index was rebuilt with the new text.
    assert index_is_fresh(store, lexical_folder(s))
    index = LexicalIndex.load(lexical_folder(s))
    assert index is not None and index.search("zygomorphic", 3)[0][0] == f"{target.id}:0"

    # Changing it back is again one update, restoring every old chunk.
    summary = ingest(s, papers, counting, store)
    assert (summary.updated, summary.unchanged, summary.chunks) == (1, 71, len(chunks[target.id]))
    assert snapshot(store) == before


def test_prune_removes_papers_missing_from_the_input(fresh) -> None:  # type: ignore[no-untyped-def]
    s, store, counting = fresh
    papers = sample_papers()
    kept, dropped = papers[3:], papers[:3]

    summary = ingest(s, kept, counting, store)
    assert (summary.removed, summary.unchanged, summary.chunks) == (0, 69, 0)
    assert {m["paper_id"] for m in store.papers()} == {p.id for p in papers}

    summary = ingest(s, kept, counting, store, prune=True)
    assert (summary.added, summary.updated, summary.unchanged, summary.removed, summary.chunks) == (0, 0, 69, 3, 0)
    assert counting.calls == 0
    assert_store_matches(store, kept, s)
    index = LexicalIndex.load(lexical_folder(s))
    assert index is not None and not any(cid.split(":")[0] in {p.id for p in dropped} for cid in index.ids)
    assert index_is_fresh(store, lexical_folder(s))


def test_dry_run_reports_and_writes_nothing(fresh, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    s, store, counting = fresh
    papers = sample_papers()
    changed = dataclasses.replace(papers[5], abstract=papers[5].abstract + " One more sentence.")
    new_input = [changed, *papers[7:]]  # papers 0-4 and 6 are missing
    before, revision = snapshot(store), store.revision
    index_before = (lexical_folder(s) / "chunks.json").read_bytes()

    summary = ingest(s, new_input, counting, store, prune=True, dry_run=True)

    assert summary.dry_run
    assert (summary.added, summary.updated, summary.unchanged, summary.removed) == (0, 1, 65, 6)
    assert summary.chunks == len(chunk_paper(changed, s.chunk_tokens, s.chunk_overlap))
    assert counting.calls == 0
    assert snapshot(store) == before
    assert store.revision == revision
    assert (lexical_folder(s) / "chunks.json").read_bytes() == index_before

    # Against a store that does not exist yet nothing is created, not even its folder.
    empty = make_settings(tmp_path / "nothing")
    summary = ingest(empty, papers, CountingEmbedder(embedder), dry_run=True)
    assert (summary.added, summary.chunks) == (72, len(before))
    assert not (tmp_path / "nothing").exists()


def test_new_chunk_settings_rechunk_stored_papers(tmp_path: Path, embedder, open_embedded) -> None:  # type: ignore[no-untyped-def]
    papers = sample_papers()[:4]
    s = make_settings(tmp_path)
    store = open_embedded(s)
    counting = CountingEmbedder(embedder, VECTORS)
    ingest(s, papers, counting, store)
    assert_store_matches(store, papers, s)

    small = s.model_copy(update={"chunk_tokens": 48, "chunk_overlap": 8})
    summary = ingest(small, papers, counting, store)
    assert (summary.updated, summary.unchanged) == (4, 0)
    assert summary.chunks == sum(len(c) for c in expected_chunks(papers, small).values())
    assert_store_matches(store, papers, small)
    count = token_counter()
    assert all(count(meta["text"]) <= 48 for _, _, meta in store.iter_chunks())
    assert ingest(small, papers, counting, store).unchanged == 4


def test_a_paper_given_twice_is_written_once_in_its_last_version(tmp_path: Path, embedder, open_embedded) -> None:  # type: ignore[no-untyped-def]
    first, other = sample_papers()[:2]
    last = dataclasses.replace(first, abstract="The last version of this abstract wins.")
    s = make_settings(tmp_path)
    store = open_embedded(s)
    summary = ingest(s, [first, other, last], CountingEmbedder(embedder, VECTORS), store)
    assert (summary.added, summary.updated, summary.unchanged) == (2, 0, 0)
    assert_store_matches(store, [last, other], s)


def test_ingest_query_finds_the_paper(fresh, embedder) -> None:  # type: ignore[no-untyped-def]
    _, store, _ = fresh
    paper = sample_papers()[10]
    hits = store.query(embedder.embed_query(paper.title), 3)
    assert hits[0].paper_id == paper.id
    assert hits[0].title == paper.title
    assert hits[0].text in paper.abstract


def cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_") and k != "OPENAI_API_KEY"}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        ASSISTANT_CHROMA_PATH=str(tmp / "chroma"),
        ASSISTANT_INDEX_DIR=str(tmp / "index"),
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


@pytest.mark.slow
def test_cli_json_summary_then_unchanged(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    keys = {"added", "updated", "unchanged", "removed", "chunks", "seconds"}

    def run() -> dict[str, Any]:
        argv = [sys.executable, "-m", "ingest", "--json"]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stderr.strip() == ""
        lines = done.stdout.strip().splitlines()
        assert len(lines) == 1
        summary = json.loads(lines[0])
        assert keys <= set(summary)
        assert isinstance(summary["seconds"], float | int) and summary["seconds"] >= 0
        return summary

    first = run()
    s = make_settings(tmp_path)
    total = sum(len(c) for c in expected_chunks(sample_papers(), s).values())
    assert {k: first[k] for k in keys - {"seconds"}} == {"added": 72, "updated": 0, "unchanged": 0, "removed": 0, "chunks": total}
    second = run()
    assert {k: second[k] for k in keys - {"seconds"}} == {"added": 0, "updated": 0, "unchanged": 72, "removed": 0, "chunks": 0}
    # "seconds" times sync() alone (plan, chunk, embed, write, index), not process start or model load, so the
    # ratio compares the work done: embedding 72 papers and building the index, against finding them unchanged.
    assert second["seconds"] < first["seconds"] / 10, (first["seconds"], second["seconds"])
    store = open_store(s, "all-MiniLM-L6-v2", 384)
    try:
        assert_store_matches(store, sample_papers(), s)
        assert index_is_fresh(store, lexical_folder(s))
    finally:
        store.close()
