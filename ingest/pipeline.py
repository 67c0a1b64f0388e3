"""Wires settings to the embedder, store and sync for one ingest."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.errors import ConfigError, InputError
from assistant.index.embed import Embedder, build_embedder
from assistant.index.paths import lexical_folder
from assistant.index.store import ChunkStore, existing_store, open_store
from ingest.loaders import LoadReport
from ingest.sync import Plan, Progress, SyncOptions, SyncSummary, sync

# Pruning more than this share of the stored papers in one run is refused without --force-prune: an input cut off
# at a line boundary reads as valid and would otherwise empty the collection.
PRUNE_MAX_SHARE = 0.5


@dataclass(frozen=True)
class IngestOptions:
    """What one ingest run does, beyond the settings."""

    prune: bool = False
    dry_run: bool = False
    force_prune: bool = False  # prune even when that removes more than PRUNE_MAX_SHARE of the stored papers
    progress_bar: bool = False
    progress: Progress | None = None


def prune_problem(report: LoadReport, todo: Plan, force: bool = False) -> str | None:
    """Why pruning this input is refused, or None: a damaged input would delete papers that are still wanted."""
    stored = todo.unchanged + sum(1 for *_, new in todo.write if not new) + len(todo.remove)
    removes = f"pruning would remove {len(todo.remove)} of the {stored} stored papers"
    if report.damage:
        return f"the input looks damaged ({report.damage[0]}) and {removes}; fix the input, or run without --prune"
    if report.skipped:
        # A skipped record's paper would look removed from the input, and pruning would delete it from the store.
        return (
            f"{report.skipped} record(s) of the input were skipped (see the warnings) and {removes}; "
            "fix the input, or run without --prune"
        )
    if not force and len(todo.remove) > 1 and len(todo.remove) > PRUNE_MAX_SHARE * stored:
        return f"{removes}, more than half (is the input cut off?); check it, then add --force-prune"
    return None


def check_index_folder(settings: Settings) -> Path:
    """Fail before anything is stored when the BM25 index folder cannot be written."""
    folder = lexical_folder(settings)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"ASSISTANT_INDEX_DIR={settings.index_dir} is not writable ({exc.strerror or exc}); "
            "point it at a folder you can write (nothing was stored)"
        ) from None
    return folder


@contextmanager
def _progress(run: IngestOptions) -> Iterator[Progress | None]:
    """The run's progress callback, or a tqdm bar on stderr when asked for one and none is given."""
    if not run.progress_bar or run.progress is not None:
        yield run.progress
        return
    from tqdm import tqdm

    bar: Any = tqdm(total=0, unit="chunk", desc="embedding")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield progress
    finally:
        bar.close()


def ingest_report(
    settings: Settings,
    report: LoadReport,
    options: IngestOptions | None = None,
    *,
    embedder: Embedder | None = None,
    store: ChunkStore | None = None,
) -> SyncSummary:
    """Sync loaded papers into the configured collection."""
    run = options or IngestOptions()
    if not run.dry_run:
        check_index_folder(settings)
    embedder = embedder or build_embedder(settings)
    target: ChunkStore | None = store
    if target is None:
        # A dry run writes nothing, not even an empty collection or store folder.
        opener = existing_store if run.dry_run else open_store
        target = opener(settings, embedder.name, embedder.dim)

    def approve(todo: Plan) -> None:
        problem = prune_problem(report, todo, run.force_prune) if run.prune else None
        if problem is not None:
            raise InputError(f"--prune refused: {problem}")

    with _progress(run) as progress:
        sync_options = SyncOptions(
            chunk_tokens=settings.chunk_tokens,
            chunk_overlap=settings.chunk_overlap,
            index_folder=lexical_folder(settings),
            prune=run.prune,
            dry_run=run.dry_run,
            batch_chunks=max(1, settings.ingest_window),
            embed_batch=max(1, settings.embedding_batch_size),
            progress=progress,
            approve=approve,
        )
        try:
            summary = sync(report.papers, target, embedder, sync_options)
        finally:
            if store is None and target is not None:
                target.close()  # opened here: release it so other processes can open the store
    summary.warnings = report.warnings
    return summary


def remove_papers(settings: Settings, paper_ids: Sequence[str], store: ChunkStore | None = None) -> int:
    """Delete these papers, record their chunks in the changelog, bump the revision and bring BM25 up to date; returns
    how many were stored."""
    from assistant.errors import StoreError
    from assistant.index.changelog import Change
    from assistant.index.lexical import update
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
    # As in sync: the removed chunks are logged before the delete, so an index saved before it is stale even if we are
    # killed mid-way, and readers (this one's update included) drop those chunks without re-reading the collection.
    change = Change(removed=frozenset(store.chunk_ids(present)))
    store.bump_revision(change, done=False)
    store.delete_papers(present)
    store.bump_revision(change)
    update(store, lexical_folder(settings))
    return len(present)
