"""Ingest into a real `chroma run` server, and the same SciFact subset into server and embedded stores."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Settings
from assistant.errors import ModelMismatchError
from assistant.index.lexical import LexicalIndex, index_is_fresh
from assistant.index.paths import lexical_folder
from assistant.index.store import ChunkStore, open_client, open_store
from ingest.loaders import load_path, sample_corpus_path
from tests.conftest import SHARED, make_settings
from tests.test_ingest_store import VECTORS, CountingEmbedder, assert_store_matches, cli_env, expected_chunks, ingest, snapshot

SCIFACT = SHARED / "data" / "scifact" / "corpus.jsonl"
MODEL, DIM = "all-MiniLM-L6-v2", 384

pytestmark = pytest.mark.server


def server_settings(tmp: Path, chroma_server: tuple[str, int, Path], collection: str | None = None) -> Settings:
    host, port, _ = chroma_server
    return make_settings(tmp, chroma_host=host, chroma_port=port, collection=collection or f"t_{uuid.uuid4().hex[:10]}")


def test_server_ingest_query_and_idempotent_rerun(tmp_path: Path, chroma_server, embedder) -> None:  # type: ignore[no-untyped-def]
    s = server_settings(tmp_path, chroma_server)
    papers = load_path(sample_corpus_path()).papers[:24]
    counting = CountingEmbedder(embedder, VECTORS)

    first = ingest(s, papers, counting)  # the pipeline opens the HTTP store from the settings
    total = sum(len(c) for c in expected_chunks(papers, s).values())
    assert (first.added, first.updated, first.unchanged, first.chunks) == (24, 0, 0, total)
    assert counting.texts == total

    store = open_store(s, MODEL, DIM, create=False)
    try:
        assert type(store.client).__name__ != "PersistentClient"
        assert_store_matches(store, papers, s)
        paper = papers[7]
        hits = store.query(embedder.embed_query(paper.title + " " + paper.abstract[:200]), 5)
        assert hits[0].paper_id == paper.id
        assert 0.0 < hits[0].score <= 1.0001
        assert store.get([hits[0].chunk_id])[0].text == hits[0].text

        folder = lexical_folder(s)
        assert f"{s.chroma_host}_{s.chroma_port}" in folder.name  # kept apart from embedded stores' indexes
        assert index_is_fresh(store, folder)
        index = LexicalIndex.load(folder)
        assert index is not None and sorted(index.ids) == sorted(snapshot(store))

        before, revision = snapshot(store), store.revision
        again = CountingEmbedder(embedder)
        second = ingest(s, papers, again, store)
        assert (second.added, second.updated, second.unchanged, second.removed, second.chunks) == (0, 0, 24, 0, 0)
        assert again.calls == 0
        assert snapshot(store) == before
        assert store.revision == revision

        third = ingest(s, papers[:20], again, store, prune=True)
        assert (third.unchanged, third.removed, third.chunks) == (20, 4, 0)
        assert_store_matches(store, papers[:20], s)
    finally:
        store.close()


def test_server_collection_of_another_model(tmp_path: Path, chroma_server) -> None:  # type: ignore[no-untyped-def]
    s = server_settings(tmp_path, chroma_server)
    client = open_client(s)
    try:
        ChunkStore(client, s.collection, "other-model", 768)
    finally:
        client.close()
    with pytest.raises(ModelMismatchError) as info:
        open_store(s, MODEL, DIM)
    message = str(info.value)
    assert "'other-model'" in message and "--collection NEW_NAME" in message and "\n" not in message


@pytest.mark.slow
def test_scifact_subset_via_cli_into_server_and_embedded(tmp_path: Path, chroma_server, embedder) -> None:  # type: ignore[no-untyped-def]
    if not SCIFACT.is_file():
        pytest.skip(f"{SCIFACT} is not available")
    subset = tmp_path / "scifact" / "corpus.jsonl"
    subset.parent.mkdir()
    with SCIFACT.open(encoding="utf-8") as src:
        subset.write_text("".join(next(src) for _ in range(20)), encoding="utf-8")
    papers = load_path(subset).papers
    host, port, _ = chroma_server
    collection = f"scifact_{uuid.uuid4().hex[:8]}"  # the shared server may hold a `scifact` of other tests
    emb_tmp, srv_tmp = tmp_path / "embedded", tmp_path / "server"
    emb_tmp.mkdir()
    srv_tmp.mkdir()
    argv = [sys.executable, "-m", "ingest", str(subset.parent), "--collection", collection, "--json"]
    envs = {
        "embedded": (emb_tmp, cli_env(emb_tmp)),
        "server": (srv_tmp, cli_env(srv_tmp, ASSISTANT_CHROMA_HOST=host, ASSISTANT_CHROMA_PORT=str(port))),
    }
    # both at once: they share nothing but the input file
    procs = {
        kind: subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for kind, (cwd, env) in envs.items()
    }
    results: dict[str, dict[str, Any]] = {}
    for kind, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (kind, err)
        results[kind] = json.loads(out)
    total = sum(len(c) for c in expected_chunks(papers, make_settings(emb_tmp)).values())
    for summary in results.values():
        assert (summary["added"], summary["unchanged"], summary["chunks"]) == (20, 0, total)

    emb_settings = make_settings(emb_tmp, collection=collection)
    srv_settings = make_settings(srv_tmp, chroma_host=host, chroma_port=port, collection=collection)
    embedded = open_store(emb_settings, MODEL, DIM, create=False)
    server = open_store(srv_settings, MODEL, DIM, create=False)
    try:
        assert_store_matches(embedded, papers, emb_settings)
        assert_store_matches(server, papers, srv_settings)
        assert snapshot(embedded) == snapshot(server)
        claim = "Diffusion tensor imaging measures white matter development in preterm infants."
        query = embedder.embed_query(claim)
        emb_hits, srv_hits = embedded.query(query, 5), server.query(query, 5)
        assert [h.chunk_id for h in emb_hits] == [h.chunk_id for h in srv_hits]
        assert all(abs(a.score - b.score) < 1e-4 for a, b in zip(emb_hits, srv_hits, strict=True))
        assert emb_hits[0].paper_id == "4983"  # the first SciFact abstract is about exactly this
        for store, s in ((embedded, emb_settings), (server, srv_settings)):
            counting = CountingEmbedder(embedder)
            again = ingest(s, papers, counting, store)
            assert (again.unchanged, again.chunks, counting.calls) == (20, 0, 0)
    finally:
        embedded.close()
        server.close()
