"""Wires settings to the embedder, store and sync for one ingest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistant.config import Settings
from assistant.index.embed import Embedder, build_embedder
from assistant.errors import InputError
from assistant.index.paths import lexical_folder
from assistant.index.store import ChunkStore, existing_store, open_store
from ingest.loaders import LoadReport
from ingest.sync import Progress, SyncSummary, sync


def ingest_report(
    settings: Settings,
    report: LoadReport,
    *,
    prune: bool = False,
    dry_run: bool = False,
    progress_bar: bool = False,
    progress: Progress | None = None,
    embedder: Embedder | None = None,
    store: ChunkStore | None = None,
) -> SyncSummary:
    """Sync loaded papers into the configured collection."""
    if prune and report.skipped and not dry_run:
        # A skipped record's paper would look removed from the input, and pruning would delete it from the store.
        raise InputError(
            f"--prune refused: {report.skipped} record(s) of the input were skipped (see the warnings) and their stored "
            "papers would be removed; fix the input, or run without --prune"
        )
    embedder = embedder or build_embedder(settings)
    target: ChunkStore | None = store
    if target is None:
        # A dry run writes nothing, not even an empty collection or store folder.
        opener = existing_store if dry_run else open_store
        target = opener(settings, embedder.name, embedder.dim)
    bar: Any = None
    if progress_bar and progress is None:
        from tqdm import tqdm

        bar = tqdm(total=0, unit="chunk", desc="embedding")

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        summary = sync(
            report.papers,
            target,
            embedder,
            chunk_tokens=settings.chunk_tokens,
            chunk_overlap=settings.chunk_overlap,
            index_folder=lexical_folder(settings),
            prune=prune,
            dry_run=dry_run,
            batch_chunks=max(1, settings.ingest_window),
            embed_batch=max(1, settings.embedding_batch_size),
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
        if store is None and target is not None:
            target.close()  # opened here: release it so other processes can open the store
    summary.warnings = report.warnings
    return summary


def remove_papers(settings: Settings, paper_ids: Sequence[str], store: ChunkStore | None = None) -> int:
    """Delete these papers, bump the collection revision and rebuild BM25; returns how many were stored."""
    from assistant.errors import StoreError
    from assistant.index.lexical import rebuild
    from assistant.index.store import open_client

    if store is None:
        # Removing needs no embedder: open the collection under the model it was built with.
        client = open_client(settings)
        try:
            meta = client.get_collection(settings.collection, embedding_function=None).metadata or {}
        except Exception:
            raise StoreError(f"collection {settings.collection!r} does not exist; run `python -m ingest` first") from None
        model, dim = str(meta.get("embedding_model", "")), int(meta.get("embedding_dim", 0))
        store = ChunkStore(client, settings.collection, model, dim, create=False)
    wanted = set(paper_ids)
    present = sorted(pid for pid in store.paper_states() if pid in wanted)
    if not present:
        return 0
    store.bump_revision()  # as in sync: an index saved before the delete is stale even if we are killed mid-way
    store.delete_papers(present)
    store.bump_revision()
    rebuild(store, lexical_folder(settings))
    return len(present)
