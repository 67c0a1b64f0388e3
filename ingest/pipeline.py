"""Wires settings to the embedder, store and sync for one ingest."""

from __future__ import annotations

from typing import Any

from assistant.config import Settings
from assistant.embed import Embedder, build_embedder
from assistant.paths import lexical_folder
from assistant.store import ChunkStore, existing_store, open_store
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
            # Write every embedding batch: a killed ingest loses at most one batch of work.
            batch_chunks=max(1, settings.embedding_batch_size),
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    summary.warnings = report.warnings
    return summary
