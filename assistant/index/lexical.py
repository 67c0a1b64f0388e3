"""BM25 over the stored chunks, persisted beside the store and brought up to date from the collection's changelog."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from assistant.index.bm25 import Bm25
from assistant.index.records import Records, Slots, encode
from assistant.index.store import ChunkStore, local_bumps
from assistant.models import Passage
from assistant.text.words import stemmer

# llama-index's BM25Retriever (llama-index-retrievers-bm25) wraps bm25s, whose index cannot absorb a chunk without a
# rebuild, and persists every node's text beside it; bm25s still tokenises, so queries and chunks split the same way.
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


log = logging.getLogger(__name__)
_quietened: list[bool] = []


def _bm25s() -> Any:
    """bm25s, imported with its logger quietened: on import it sets the logger to DEBUG, which
    overrides the level prepare_runtime chose and prints index-building chatter on stderr."""
    import bm25s

    if not _quietened:  # setLevel clears every logger's cache: once, not per query
        logging.getLogger("bm25s").setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
        _quietened.append(True)
    return bm25s


def index_folder(index_dir: Path, collection: str, where: str) -> Path:
    """Folder of one collection's index; `where` keeps embedded and server stores apart."""
    return index_dir / f"{_SAFE.sub('_', where)}__{_SAFE.sub('_', collection)}"


T = TypeVar("T")
SEARCH_THREADS = 4  # concurrent queries beyond this many wait for a search thread
MERGE_SEGMENTS = 8  # more segments than this, or deltas over a tenth of the base, are merged into one
MERGE_SHARE = 0.1


@dataclass(frozen=True, eq=False)
class LexicalIndex:
    """A BM25 index (assistant.index.bm25) whose documents are chunk ids, at one revision of the store.

    Never changed once built, so a cache replaces a stale index by assigning a whole new one: a query holding
    the old one finishes on it undisturbed. `count` is the store's chunk count when it was indexed. `records` holds
    the chunks' stored records (assistant.index.records), for chunks indexed with theirs.
    """

    bm25: Bm25
    revision: int
    count: int
    collection: str = ""  # the collection's id: a re-created collection's changelog does not apply to this index
    records: Records = field(default_factory=Records)

    @cached_property
    def ids(self) -> tuple[str, ...]:
        """The indexed chunk ids."""
        return tuple(self.bm25.live_ids())

    @cached_property
    def _slot_ids(self) -> tuple[str, ...]:
        return tuple(i for seg in self.bm25.segments for i in seg.ids)

    @cached_property
    def _slots(self) -> Slots:
        return Slots(self.bm25.segments, self.bm25.dead, self._slot_ids)

    def passages(self, ids: Sequence[str]) -> dict[str, Passage]:
        """The stored records of these chunks as Passages, equal to the store's (score 0); ids not indexed (or removed,
        or indexed without a record) are left out."""
        return self.records.passages(self._slots.find(ids))

    def warm(self) -> LexicalIndex:
        """This index with the lookups queries need worked out now (in a refresh), not on the first query."""
        _ = self._slots
        return self

    @staticmethod
    def tokenize(texts: list[str]) -> list[list[str]]:
        """Token lists as the index sees them: English stopwords out, stemmed."""
        bm25s = _bm25s()
        tokens: list[list[str]] = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer(), return_ids=False, show_progress=False)
        return tokens

    @classmethod
    def build(
        cls, ids: Sequence[str], texts: list[str], revision: int, collection: str = "", records: Sequence[bytes] = ()
    ) -> LexicalIndex:
        """Index chunk texts (title included, as embedded), with their records (records.encode) when given."""
        tokens = cls.tokenize(texts) if texts else []
        bm25 = Bm25.build(tokens, ids)
        held = Records().with_segment(bm25.segments[0].name, records) if records and bm25.segments else Records()
        return cls(bm25, revision, len(ids), collection, held)

    @classmethod
    def from_store(cls, store: ChunkStore) -> LexicalIndex:
        """Build from every chunk in the store, keeping each chunk's record."""
        revision, collection = store.revision, store.collection_id
        ids, texts, records = [], [], []
        for chunk_id, document, meta in store.iter_chunks():
            ids.append(chunk_id)
            texts.append(document or "")
            records.append(encode(document, meta))
        return cls.build(ids, texts, revision, collection, records)

    def apply(
        self, removed: Iterable[str], added: Mapping[str, str], revision: int, records: Mapping[str, bytes] | None = None
    ) -> LexicalIndex:
        """This index with chunks removed and chunks (id -> text) added or replaced, with their records (id -> encoded
        record) when given; only `added` is tokenised. A removed or replaced chunk's record goes with its slot."""
        where = self.bm25.slot_map()
        gone = {i: where[i] for i in {*removed, *added} if i in where}
        ids = sorted(added)
        tokens = self.tokenize([added[i] for i in ids]) if ids else []
        bm25 = self.bm25.absorb(gone, list(zip(ids, tokens, strict=True)))
        held = self.records
        if ids and records:
            held = held.with_segment(bm25.segments[-1].name, [records.get(i, b"") for i in ids])
        segments = bm25.segments
        deltas = sum(len(s.ids) for s in segments[1:])
        if segments and (len(segments) > MERGE_SEGMENTS or deltas > MERGE_SHARE * len(segments[0].ids)):
            merged = bm25.merged()
            bm25, held = merged, held.merged(bm25, merged)
        return LexicalIndex(bm25, revision, bm25.docs, self.collection, held.kept(bm25))

    @property
    def engine(self) -> Any:
        """A bm25s index of the same documents, in slot order, to check scores against; queries never use it."""
        bm25s = _bm25s()
        words = list(self.bm25.vocab)
        engine = bm25s.BM25()
        docs = []
        for seg in self.bm25.segments:
            for d in range(len(seg.ids)):
                lo, hi = seg.doc_ptr[d], seg.doc_ptr[d + 1]
                docs.append([words[t] for t, n in zip(seg.doc_terms[lo:hi], seg.doc_tf[lo:hi], strict=True) for _ in range(n)])
        if docs:
            engine.index(docs, show_progress=False)
        return engine

    def save(self, folder: Path) -> LexicalIndex:
        """Write atomically: a reader sees the old index or the new one, never half.

        Writers (an ingest and the readers that update a stale index) may save at the same time, so each
        stages in its own folder; when another writer swaps its index in first, that one stays (readers check
        revision and size, so a stale winner is updated by the next reader). Segments and their records already in
        the folder are hard-linked, not written again: an update writes only its new segment. Returns this index
        with its records read from the files written (held open: they stay readable once swapped away).
        """
        tag = f"{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex[:8]}"
        tmp, old = folder.with_name(f"{folder.name}.tmp-{tag}"), folder.with_name(f"{folder.name}.old-{tag}")
        tmp.mkdir(parents=True)
        reuse = folder if folder.is_dir() else None
        try:
            info = self.bm25.save(tmp, reuse)
            records = self.records.save(tmp, reuse)
            # The tag makes every save's chunks.json unique, so a reader can tell when the folder was swapped away and
            # back again (by a later save of an equal index) while it read the other files.
            info.update(revision=self.revision, count=self.count, collection=self.collection, save=tag)
            info.update(records=list(records.segments))
            (tmp / "chunks.json").write_text(json.dumps(info))
            with contextlib.suppress(FileNotFoundError):  # no index yet, or another writer is swapping
                folder.rename(old)
            with contextlib.suppress(OSError):  # another writer's index went in first
                tmp.rename(folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
        return replace(self, records=records)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex | None:
        """The saved index, or None when there is none or it cannot be read."""
        try:
            raw = (folder / "chunks.json").read_text()
            info = json.loads(raw)
            bm25 = Bm25.load(folder, info)
            records = Records.load(folder, info["records"])  # an older format, saved without records, is rebuilt
            # A writer may swap the folder between the reads; manifest and segments must come from the same save.
            if (folder / "chunks.json").read_text() != raw:
                return None
        except Exception:  # a missing, half-swapped, older-format or foreign folder: rebuild from the store
            return None
        return cls(bm25, int(info["revision"]), int(info["count"]), str(info.get("collection", "")), records)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Best (chunk id, BM25 score) pairs; chunks without a query term are left out."""
        if not self.bm25.docs:
            return []
        tokens = self.tokenize([query])
        vocab = self.bm25.vocab
        term_ids = [vocab[t] for t in tokens[0] if t in vocab] if tokens else []
        if not term_ids:
            return []
        scores = self.bm25.scores(term_ids)
        top = np.flatnonzero(scores > 0)  # a chunk without a query term scores 0 and is never returned
        if len(top) > k > 0:
            # Everything scoring at least the k-th best (ties included, so the cut does not depend on partition
            # order); the ranking below puts ties in slot order (document number in a fresh build).
            found = scores[top]
            top = top[found >= np.partition(found, len(found) - k)[len(found) - k]]
        top = top[np.lexsort((top, -scores[top]))][: max(k, 0)]
        ids = self._slot_ids
        return [(ids[int(d)], float(scores[d])) for d in top]


Build = Callable[[ChunkStore], LexicalIndex]


class LexicalCache:
    """Keeps one loaded index per store and replaces it, in a background thread, when the store's revision moves.

    Reading the revision costs a store round trip (0.6 ms embedded), as much as the BM25 search itself, so it is
    read at most every `recheck_s` seconds; a write by this process is noticed at once, another process's within that.
    A query that notices a stale index starts a refresh and is answered by the index it has; no query waits for it.
    Only the very first load blocks. A refresh fetches only the chunks the collection's changelog lists since the
    index's revision and absorbs them; it rebuilds from the whole collection only when the changelog does not reach
    back that far. A stale index is still safe: chunks deleted since indexing drop out when their text is fetched.
    The index also holds each chunk's stored record, which `current_index` offers only while the index is at the
    revision last read: a query then needs no round trip for its papers' records, and a chunk another process
    deleted or rewrote is served from the index for at most `recheck_s` (this process's own writes, not at all).
    `fetched` counts the chunks fetched by updates, `rebuilds` the full builds.
    """

    def __init__(
        self, store: ChunkStore, folder: Path, recheck_s: float = 1.0, *, build: Build = LexicalIndex.from_store
    ) -> None:
        self.store = store
        self.folder = folder
        self.recheck_s = recheck_s
        self._build = build
        self._index: LexicalIndex | None = None  # replaced whole, never changed: readers need no lock
        # (local bumps, monotonic time, the store's revision) when the revision was last read
        self._checked: tuple[int, float, int | None] = (-1, -float("inf"), None)
        self._building = threading.Lock()  # one load or build at a time; queries never take it once an index exists
        self._lock = threading.Lock()  # guards _worker and _again
        self._worker: threading.Thread | None = None  # the background refresh, while one runs
        self._again = False  # a query noticed a stale index while the worker ran: refresh once more
        self._pool: ThreadPoolExecutor | None = None  # searches run beside the dense search (soon)
        self.fetched = 0
        self.rebuilds = 0

    def get(self) -> LexicalIndex:
        """The newest index this cache has; a stale one starts a background refresh and is returned meanwhile."""
        bumps, now = local_bumps(), time.monotonic()
        index, (seen, at, _) = self._index, self._checked
        if index is not None and seen == bumps and now - at < self.recheck_s:
            return index
        current = self.store.revision
        if index is None:
            index = self.refresh()
        elif index.revision != current:
            self._start_worker()
        self._checked = (bumps, now, current)
        return index

    def current_index(self) -> LexicalIndex | None:
        """The index, when it is at the store's revision as last read (as `get` reads it); None when known stale."""
        index = self.get()
        bumps, _, revision = self._checked
        return index if index.revision == revision and bumps == local_bumps() else None

    def soon(self, work: Callable[[LexicalIndex], T]) -> Future[T]:
        """`work(get())` started on a search thread, so that the caller can embed the query and wait on the dense
        search meanwhile: the wait for the store's answer leaves the interpreter free for the BM25 search."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(SEARCH_THREADS, thread_name_prefix="bm25-search")
        return self._pool.submit(lambda: work(self.get()))

    def refresh(self) -> LexicalIndex:
        """The index at the store's revision as of this call, loaded or built now if need be: the first load, or a
        caller that must see its own write at once. Waits for a refresh already in flight."""
        with self._building:
            current, index = self.store.revision, self._index
            if index is None or index.revision != current:
                index = self._index = self._fresh(current)
            return index

    def wait(self, timeout: float | None = None) -> LexicalIndex | None:
        """Wait for a background refresh in flight, then return the index served (None before the first load)."""
        with self._lock:
            worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return self._index

    def _fresh(self, current: int) -> LexicalIndex:
        """The index at `current`: the one held or saved, brought up to date from the changelog, else one built from
        the whole store; saved either way."""
        base = self._index
        if base is None:
            base = LexicalIndex.load(self.folder)
            store = self.store
            if base is not None and (base.revision, base.count, base.collection) == (current, store.count(), store.collection_id):
                return base.warm()
        index = self._catch_up(base, current) if base is not None else None
        if index is None:
            index = self._build(self.store)
            self.rebuilds += 1
        with contextlib.suppress(OSError):  # a read-only index folder still gets a working in-memory index
            index = index.save(self.folder)
        return index.warm()

    def _catch_up(self, base: LexicalIndex, current: int) -> LexicalIndex | None:
        """`base` with the changes logged since its revision absorbed, or None when the log does not reach back."""
        if base.collection != self.store.collection_id or base.revision >= current:
            return None
        changes = self.store.changes_since(base.revision, current)
        if changes is None:
            return None
        # A rewritten chunk is listed as written: its old text goes and its new one is fetched; a chunk listed as
        # written but no longer stored is simply absent.
        chunks = self.store.chunks(sorted(changes.added))
        self.fetched += len(chunks)
        texts = {i: document for i, (document, _) in chunks.items()}
        return base.apply(changes.removed, texts, current, {i: encode(*chunk) for i, chunk in chunks.items()})

    def _start_worker(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._again = True  # the build in flight may predate the write just noticed
                return
            # Not a daemon: a save cut off at interpreter exit would leave its staging folder behind.
            self._worker = threading.Thread(target=self._background, name="bm25-refresh")
            self._worker.start()

    def _background(self) -> None:
        while True:
            try:
                self.refresh()
            except Exception as exc:  # queries keep the index they have; the next one to notice a stale index retries
                stale = self._index.revision if self._index is not None else None
                log.warning("refreshing the BM25 index failed, queries keep revision %s: %s", stale, exc)
            with self._lock:
                if not self._again:
                    self._worker = None
                    return
                self._again = False


def update(store: ChunkStore, folder: Path) -> LexicalIndex:
    """Bring the saved index up to the store's revision (from the changelog where it reaches back) and persist it."""
    return LexicalCache(store, folder).refresh()


def rebuild(store: ChunkStore, folder: Path) -> LexicalIndex:
    """Rebuild the index from the whole store and persist it."""
    return LexicalIndex.from_store(store).save(folder)


def index_is_fresh(store: ChunkStore, folder: Path) -> bool:
    """Whether the saved index matches the store's revision and size."""
    index = LexicalIndex.load(folder)
    return index is not None and index.revision == store.revision and index.count == store.count()
