"""Idempotent sync of papers into the store: skip unchanged, replace changed, prune removed."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from assistant.index.changelog import Change
from assistant.index.embed import Embedder
from assistant.index.lexical import index_is_fresh, update
from assistant.index.store import ChunkStore
from assistant.models import Chunk, Paper
from ingest.chunking import TITLE_TOKENS, chunk_paper, embedding_text, title_is_cut, token_counter
from ingest.loaders import content_hash

Progress = Callable[[int, int], None]


@dataclass
class SyncSummary:
    """What one ingest did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        """The JSON form printed by `--json`."""
        out = asdict(self)
        out["seconds"] = round(self.seconds, 3)
        out["chunks_per_second"] = round(self.chunks_per_second, 2)
        return out

    def line(self) -> str:
        """One human-readable summary line."""
        verb = "would write" if self.dry_run else "wrote"
        return (
            f"papers: {self.added} added, {self.updated} updated, {self.unchanged} unchanged, {self.removed} removed; "
            f"{verb} {self.chunks} chunks in {self.seconds:.1f}s ({self.chunks_per_second:.1f} chunks/s)"
        )


@dataclass(frozen=True)
class Plan:
    """Which papers to write and which to remove."""

    write: list[tuple[Paper, str, bool]]  # (paper, hash, is_new)
    unchanged: int
    remove: list[str]


def stored_hash(paper: Paper, chunk_tokens: int, chunk_overlap: int) -> str:
    """The hash a paper's chunks are stored under: its content and the chunking that cut it,
    so changing ASSISTANT_CHUNK_TOKENS or ASSISTANT_CHUNK_OVERLAP re-chunks papers on the next ingest.
    A title that the embedded text shortens marks the hash too, so papers stored with their whole long title are
    embedded again; every other paper keeps its hash."""
    key = f"{content_hash(paper)}/{chunk_tokens}/{chunk_overlap}"
    if title_is_cut(paper.title):
        key += f"/title{TITLE_TOKENS}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def plan(papers: Sequence[Paper], store: ChunkStore | None, prune: bool, chunk_tokens: int = 0, chunk_overlap: int = 0) -> Plan:
    """Compare the input with what the store holds (None: a store that does not exist yet).

    A paper id given twice counts once, with its last version (as the loaders keep it), so callers that
    merge several reports cannot write one paper twice or count it twice.
    """
    papers = list({p.id: p for p in papers}.values())
    states = store.paper_states() if store is not None else {}
    write: list[tuple[Paper, str, bool]] = []
    unchanged = 0
    for paper in papers:
        digest = stored_hash(paper, chunk_tokens, chunk_overlap)
        state = states.get(paper.id)
        if state is not None and state.complete and state.content_hash == digest:
            unchanged += 1
        else:
            write.append((paper, digest, state is None))
    wanted = {p.id for p in papers}
    remove = sorted(pid for pid in states if pid not in wanted) if prune else []
    return Plan(write, unchanged, remove)


@dataclass(frozen=True)
class SyncOptions:
    """How one sync cuts, batches and reports; `approve` sees the plan before anything is written."""

    chunk_tokens: int
    chunk_overlap: int
    index_folder: Path
    prune: bool = False
    dry_run: bool = False
    batch_chunks: int = 512
    embed_batch: int = 64
    progress: Progress | None = None
    approve: Callable[[Plan], None] | None = None


def sync(papers: Sequence[Paper], store: ChunkStore | None, embedder: Embedder, options: SyncOptions) -> SyncSummary:
    """Bring the store in line with `papers`; safe to kill and re-run at any point.

    Papers are embedded in windows of about `batch_chunks` chunks and each window is written once embedded, so a
    kill loses at most one window of work. `store` may be None only for a dry run against a collection that does
    not exist yet. `approve` may raise to stop the sync after planning, before anything is written.
    """
    if store is None and not options.dry_run:
        raise ValueError("sync needs a store unless it is a dry run")
    started = time.perf_counter()
    todo = plan(papers, store, options.prune, options.chunk_tokens, options.chunk_overlap)
    if options.approve is not None:
        options.approve(todo)
    summary = SyncSummary(
        added=sum(1 for *_, new in todo.write if new),
        updated=sum(1 for *_, new in todo.write if not new),
        unchanged=todo.unchanged,
        removed=len(todo.remove),
        dry_run=options.dry_run,
    )
    chunked: list[tuple[Paper, str, list[Chunk]]] = []
    if todo.write:  # loading the tokenizer costs about a second: a run with nothing to write skips it
        count = token_counter()
        cut = (options.chunk_tokens, options.chunk_overlap, count)
        chunked = [(paper, digest, chunk_paper(paper, *cut)) for paper, digest, _ in todo.write]
    total = sum(len(c) for *_, c in chunked)
    if options.dry_run or store is None:
        summary.chunks = total
    else:
        summary.chunks = _write(todo, chunked, store, embedder, options)
    summary.seconds = time.perf_counter() - started
    return summary


def _write(
    todo: Plan, chunked: list[tuple[Paper, str, list[Chunk]]], store: ChunkStore, embedder: Embedder, options: SyncOptions
) -> int:
    """Write the planned papers window by window, remove the pruned ones, refresh BM25; returns chunks written."""
    total = sum(len(c) for *_, c in chunked)
    done = 0
    change = planned_change(todo, chunked, store) if todo.write or todo.remove else None
    if change is not None:
        # An index saved before this write is stale from now on, even if we are killed; the changelog says what changes.
        store.bump_revision(change, done=False)
    if options.progress:
        options.progress(0, total)

    def embedded(n: int) -> None:
        nonlocal done
        done += n
        if options.progress:
            options.progress(done, total)

    group: list[tuple[Paper, str, list[Chunk]]] = []
    for item in chunked:
        group.append(item)
        if sum(len(c) for *_, c in group) >= options.batch_chunks:
            _write_group(group, store, embedder, options.embed_batch, embedded)
            group = []
    if group:
        _write_group(group, store, embedder, options.embed_batch, embedded)
    if todo.remove:
        store.delete_papers(todo.remove)
    if change is not None:
        store.bump_revision(change)
        update(store, options.index_folder)
    elif not index_is_fresh(store, options.index_folder):
        update(store, options.index_folder)
    return done


def planned_change(todo: Plan, chunked: list[tuple[Paper, str, list[Chunk]]], store: ChunkStore) -> Change:
    """The chunks this sync writes, and the stored chunks of papers it rewrites or prunes (some may stay)."""
    added = frozenset(c.id for *_, chunks in chunked for c in chunks)
    touched = [paper.id for paper, _, new in todo.write if not new] + list(todo.remove)
    return Change(added, frozenset(store.chunk_ids(touched)) - added if touched else frozenset())


def _write_group(
    group: list[tuple[Paper, str, list[Chunk]]],
    store: ChunkStore,
    embedder: Embedder,
    embed_batch: int,
    embedded: Callable[[int], None],
) -> int:
    """Embed a window of papers' chunks, then write the papers."""
    count = token_counter()
    documents = [[embedding_text(paper.title, c.text, count) for c in chunks] for paper, _, chunks in group]
    flat = [d for docs in documents for d in docs]
    # Texts of similar length share a batch, as in one big encode() call: a batch pads to its longest text, and
    # a paper's short last chunk beside full ones would otherwise waste a tenth or more of the model's time.
    order = sorted(range(len(flat)), key=lambda i: len(flat[i]))
    vectors: list[list[float]] = [[] for _ in flat]
    for start in range(0, len(order), embed_batch):
        part = order[start : start + embed_batch]
        for i, vector in zip(part, embedder.embed([flat[i] for i in part]), strict=True):
            vectors[i] = vector
        embedded(len(part))
    items = []
    at = 0
    for (paper, digest, chunks), docs in zip(group, documents, strict=True):
        items.append((paper, digest, chunks, docs, vectors[at : at + len(docs)]))
        at += len(docs)
    return store.write_papers(items)
