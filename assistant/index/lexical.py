"""BM25 over the stored chunks, built at ingest time and persisted beside the store."""

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.index.store import ChunkStore, local_bumps

# llama-index's BM25Retriever (llama-index-retrievers-bm25) wraps bm25s too, but persists every node's text and
# metadata beside the index and keeps no store revision; chunk ids and a revision are all this cache needs.
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


_local = threading.local()


def _stemmer() -> Any:
    """One English stemmer per thread: building one costs more than stemming a query, and they are not shared safely."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


@dataclass(frozen=True, eq=False)
class LexicalIndex:
    """A bm25s index whose document numbers map to chunk ids.

    Never changed once built, so a cache replaces a stale index by assigning a whole new one: a query holding
    the old one finishes on it undisturbed.
    """

    engine: Any  # a bm25s.BM25, only read after indexing
    ids: tuple[str, ...]
    revision: int
    count: int

    @staticmethod
    def tokenize(texts: list[str]) -> Any:
        """Token lists as the index sees them: English stopwords out, stemmed."""
        bm25s = _bm25s()
        return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False)

    @classmethod
    def build(cls, ids: Sequence[str], texts: list[str], revision: int) -> LexicalIndex:
        """Index chunk texts (title included, as embedded)."""
        bm25s = _bm25s()
        engine = bm25s.BM25()
        if texts:
            tokens = bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), show_progress=False)
            engine.index(tokens, show_progress=False)
        return cls(engine, tuple(ids), revision, len(ids))

    @classmethod
    def from_store(cls, store: ChunkStore) -> LexicalIndex:
        """Build from every chunk in the store."""
        revision = store.revision
        ids, texts = [], []
        for chunk_id, document, _ in store.iter_chunks():
            ids.append(chunk_id)
            texts.append(document or "")
        return cls.build(ids, texts, revision)

    def save(self, folder: Path) -> None:
        """Write atomically: a reader sees the old index or the new one, never half.

        Writers (an ingest and the readers that rebuild a stale index) may save at the same time, so each
        stages in its own folder; when another writer swaps its index in first, that one stays (readers check
        revision and size, so a stale winner is rebuilt by the next reader).
        """
        tag = f"{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex[:8]}"
        tmp, old = folder.with_name(f"{folder.name}.tmp-{tag}"), folder.with_name(f"{folder.name}.old-{tag}")
        tmp.mkdir(parents=True)
        try:
            if self.ids:
                self.engine.save(str(tmp))
            # The tag makes every save's chunks.json unique, so a reader can tell when the folder was swapped away and
            # back again (by a later save of an equal index) while it read the other files.
            info = {"ids": list(self.ids), "revision": self.revision, "count": self.count, "save": tag}
            (tmp / "chunks.json").write_text(json.dumps(info))
            with contextlib.suppress(FileNotFoundError):  # no index yet, or another writer is swapping
                folder.rename(old)
            with contextlib.suppress(OSError):  # another writer's index went in first
                tmp.rename(folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex | None:
        """The saved index, or None when there is none or it cannot be read."""
        bm25s = _bm25s()

        try:
            raw = (folder / "chunks.json").read_text()
            info = json.loads(raw)
            engine = bm25s.BM25.load(str(folder)) if info["ids"] else bm25s.BM25()
            # A writer may swap the folder between the two reads; ids and index must come from the same save.
            if (folder / "chunks.json").read_text() != raw or (info["ids"] and engine.scores["num_docs"] != len(info["ids"])):
                return None
        except Exception:  # a missing, half-swapped or foreign folder: rebuild from the store
            return None
        return cls(engine, tuple(info["ids"]), int(info["revision"]), int(info["count"]))

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Best (chunk id, BM25 score) pairs; chunks without a query term are left out."""
        if not self.ids:
            return []
        tokens = self.tokenize([query])
        if not tokens or not tokens[0]:
            return []
        # Scoring the known terms and selecting the top k here skips retrieve()'s per-call executor and progress
        # machinery: 0.3 ms instead of 1.2 ms a query on SciFact, with the same scores.
        vocab = self.engine.vocab_dict
        term_ids = [vocab[t] for t in tokens[0] if t in vocab]
        if not term_ids:
            return []
        scores = self.engine.get_scores_from_ids(term_ids)
        k = min(k, len(scores))
        # Everything scoring at least the k-th best (ties included, so the cut does not depend on partition order),
        # then best first with ties by document number.
        floor = np.partition(scores, len(scores) - k)[len(scores) - k]
        top = np.flatnonzero(scores >= floor)
        top = top[np.lexsort((top, -scores[top]))][:k]
        return [(self.ids[int(d)], float(scores[d])) for d in top if scores[d] > 0]


Build = Callable[[ChunkStore], LexicalIndex]


class LexicalCache:
    """Keeps one loaded index per store and replaces it, in a background thread, when the store's revision moves.

    Reading the revision costs a store round trip (0.6 ms embedded), as much as the BM25 search itself, so it is
    read at most every `recheck_s` seconds; a write by this process is noticed at once, another process's within that.
    A query that notices a stale index starts a refresh and is answered by the index it has: rebuilding from the
    whole collection takes seconds on a large one, and no query waits for it. Only the very first load blocks.
    A stale index is still safe: chunks deleted since indexing drop out when their text is fetched.
    """

    def __init__(
        self, store: ChunkStore, folder: Path, recheck_s: float = 1.0, *, build: Build = LexicalIndex.from_store
    ) -> None:
        self.store = store
        self.folder = folder
        self.recheck_s = recheck_s
        self._build = build
        self._index: LexicalIndex | None = None  # replaced whole, never changed: readers need no lock
        self._checked = (-1, -float("inf"))  # (local bumps, monotonic time) when the revision was last read
        self._building = threading.Lock()  # one load or build at a time; queries never take it once an index exists
        self._lock = threading.Lock()  # guards _worker and _again
        self._worker: threading.Thread | None = None  # the background refresh, while one runs
        self._again = False  # a query noticed a stale index while the worker ran: refresh once more

    def get(self) -> LexicalIndex:
        """The newest index this cache has; a stale one starts a background refresh and is returned meanwhile."""
        bumps, now = local_bumps(), time.monotonic()
        index, (seen, at) = self._index, self._checked
        if index is not None and seen == bumps and now - at < self.recheck_s:
            return index
        current = self.store.revision
        if index is None:
            index = self.refresh()
        elif index.revision != current:
            self._start_worker()
        self._checked = (bumps, now)
        return index

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
        """The saved index when it matches the store, else one built from the store and saved."""
        loaded = LexicalIndex.load(self.folder)
        if loaded is not None and loaded.revision == current and loaded.count == self.store.count():
            return loaded
        built = self._build(self.store)
        with contextlib.suppress(OSError):  # a read-only index folder still gets a working in-memory index
            built.save(self.folder)
        return built

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


def rebuild(store: ChunkStore, folder: Path) -> LexicalIndex:
    """Rebuild and persist the index after an ingest."""
    index = LexicalIndex.from_store(store)
    index.save(folder)
    return index


def index_is_fresh(store: ChunkStore, folder: Path) -> bool:
    """Whether the saved index matches the store's revision and size."""
    index = LexicalIndex.load(folder)
    return index is not None and index.revision == store.revision and index.count == store.count()
