"""The HNSW search breadth: set on collections the store creates, never changed on existing ones."""

from __future__ import annotations

from pathlib import Path

from assistant.index.store import open_store
from tests.conftest import make_settings


def test_new_collections_get_the_configured_ef_search_and_old_ones_keep_theirs(tmp_path: Path) -> None:
    store = open_store(make_settings(tmp_path, hnsw_ef_search=321), "all-MiniLM-L6-v2", 384)
    assert store.collection.configuration["hnsw"]["ef_search"] == 321
    assert make_settings(tmp_path).hnsw_ef_search == 800  # the default: near-exact on SciFact (docs/benchmarks.md)
    # Reopened under another setting (a query process, or an ingest into the existing collection): unchanged, and
    # the collection's metadata is left alone.
    again = open_store(make_settings(tmp_path, hnsw_ef_search=50), "all-MiniLM-L6-v2", 384)
    assert again.collection.configuration["hnsw"]["ef_search"] == 321
    assert again.collection.metadata["embedding_model"] == "all-MiniLM-L6-v2"
    other = open_store(make_settings(tmp_path, hnsw_ef_search=50, collection="other"), "all-MiniLM-L6-v2", 384)
    assert other.collection.configuration["hnsw"]["ef_search"] == 50
