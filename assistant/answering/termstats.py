"""How rare each stem is in the collection, for the evidence scorer: computed from the stored chunks once per revision."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

from assistant.answering.scorer import DocFreqTermStats

log = logging.getLogger("assistant.answering.termstats")


class ChunkSource(Protocol):
    """What the statistics are read from (the chunk store)."""

    @property
    def revision(self) -> int: ...

    def iter_chunks(self) -> Iterator[tuple[str, str, dict[str, Any]]]: ...


class CollectionTermStats:
    """Document frequencies of the collection's chunks, as the scorer was fitted with (`evals.fit_evidence`).

    The first question computes them; after that a changed revision recomputes them in the background while
    questions keep the ones they have, so no question waits for a recount.
    """

    def __init__(self, store: ChunkSource, recheck_s: float = 5.0) -> None:
        self.store = store
        self.recheck_s = recheck_s
        self._stats: DocFreqTermStats | None = None
        self._revision = -1
        self._checked = -float("inf")
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def _count(self) -> tuple[DocFreqTermStats, int]:
        revision = self.store.revision
        chunks = self.store.iter_chunks()
        return DocFreqTermStats.from_texts(doc or "" for _, doc, _ in chunks), revision

    def _refresh(self) -> None:
        try:
            stats, revision = self._count()
            with self._lock:
                self._stats, self._revision = stats, revision
        except Exception as exc:  # a failed recount keeps the old statistics; the next check retries
            log.warning("term statistics not refreshed: %s", exc)
        finally:
            with self._lock:
                self._worker = None

    def current(self) -> DocFreqTermStats:
        """The statistics: blocking only the first time."""
        if self._stats is None:
            stats, revision = self._count()
            with self._lock:
                if self._stats is None:
                    self._stats, self._revision = stats, revision
            assert self._stats is not None
            return self._stats
        now = time.monotonic()
        if now - self._checked >= self.recheck_s:
            self._checked = now
            try:
                stale = self.store.revision != self._revision
            except Exception:  # the store's own errors surface on the search path, not here
                stale = False
            with self._lock:
                if stale and self._worker is None:
                    self._worker = threading.Thread(target=self._refresh, name="term-stats", daemon=True)
                    self._worker.start()
        return self._stats

    def idf(self, stem: str) -> float:
        return self.current().idf(stem)
