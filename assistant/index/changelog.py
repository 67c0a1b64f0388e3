"""Which chunks each revision of a collection wrote and removed, kept in Chroma beside the collection.

Every revision bump records an entry in `<collection>__changes` before the revision moves, so a reader that sees a
revision also finds its entry. An ingest records twice: its plan when it starts writing (an "intent"), and the same
ids again when it is done, so a reader that caught up in the middle fetches the rest at the end. An ingest killed
after its intent leaves that intent as the newest entry; the next ingest carries its ids forward. A bump without
change information (an older writer) records an "unknown" entry, and readers crossing it rebuild.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

KEEP_REVISIONS = 1000  # entries older than this many revisions are pruned; a reader further behind rebuilds
IDS_PER_RECORD = 2000  # ids per record: documents stay small, and a record is one row of one batch


@dataclass(frozen=True)
class Change:
    """Chunk ids one revision wrote (new or rewritten) and removed."""

    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()

    def __or__(self, other: Change) -> Change:
        return Change(self.added | other.added, self.removed | other.removed)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


def changes_name(collection: str) -> str:
    """The changelog collection of a chunk collection."""
    return f"{collection}__changes"


def _parts(change: Change) -> Iterator[dict[str, list[str]]]:
    """The change cut into record documents of at most IDS_PER_RECORD ids each (always at least one)."""
    rows = [("added", i) for i in sorted(change.added)] + [("removed", i) for i in sorted(change.removed)]
    for start in range(0, max(len(rows), 1), IDS_PER_RECORD):
        part: dict[str, list[str]] = {"added": [], "removed": []}
        for key, chunk_id in rows[start : start + IDS_PER_RECORD]:
            part[key].append(chunk_id)
        yield part


class Changelog:
    """The `<collection>__changes` collection; entries carry the chunk collection's id, so a re-created collection
    of the same name never reads its predecessor's entries."""

    def __init__(self, client: Any, collection: str) -> None:
        self.client = client
        self.name = changes_name(collection)
        self._collection: Any = None

    def _log(self) -> Any:
        if self._collection is None:
            self._collection = self.client.get_or_create_collection(self.name, embedding_function=None)
        return self._collection

    def record(self, change: Change | None, revision: int, owner: str, kind: str) -> None:
        """Store one revision's entry: kind is "intent", "done", or "unknown" (change is None)."""
        if change is None:
            kind, change = "unknown", Change()
        writer = uuid.uuid4().hex[:12]
        docs = [json.dumps(p) for p in _parts(change)]
        ids = [f"{revision:012d}-{kind}-{writer}-{n:05d}" for n in range(len(docs))]
        meta = {"revision": revision, "kind": kind, "collection": owner, "parts": len(docs)}
        metas = [{**meta, "part": n} for n in range(len(docs))]
        # Chroma wants a vector for every record; the log is never searched, so one dimension serves.
        limit = max(1, int(self.client.get_max_batch_size()))
        for at in range(0, len(ids), limit):
            end = at + limit
            vectors = [[1.0]] * len(ids[at:end])
            self._log().upsert(ids=ids[at:end], documents=docs[at:end], metadatas=metas[at:end], embeddings=vectors)

    def _entries(self, owner: str, after: int) -> list[tuple[str, str, dict[str, Any]]]:
        where = {"$and": [{"collection": owner}, {"revision": {"$gt": after}}]}
        got = self._log().get(where=where, include=["documents", "metadatas"])
        return list(zip(got["ids"], got["documents"], got["metadatas"], strict=True))

    def pending(self, owner: str, revision: int) -> Change:
        """Ids of intents at `revision` or later: an ingest killed before it was done, or one still writing."""
        entries = self._entries(owner, revision - 1)
        return _union(doc for _, doc, meta in entries if meta.get("kind") == "intent")

    def since(self, owner: str, revision: int, current: int) -> Change | None:
        """Everything written and removed after `revision`, up to `current` or later; None when the log does not reach
        back that far (pruned, written by an older version, or an unknown bump in between)."""
        entries = self._entries(owner, revision)
        groups: dict[str, list[tuple[dict[str, Any], str]]] = {}
        for record_id, doc, meta in entries:
            if meta.get("kind") not in ("intent", "done"):
                return None
            groups.setdefault(record_id.rsplit("-", 1)[0], []).append((meta, doc))
        covered: set[int] = set()
        docs: list[str] = []
        for rows in groups.values():
            meta = rows[0][0]
            if len(rows) != int(meta.get("parts", 0)):  # a record cut off while written
                if int(meta["revision"]) <= current:
                    return None
                continue
            covered.add(int(meta["revision"]))
            docs.extend(doc for _, doc in rows)
        if not set(range(revision + 1, current + 1)) <= covered:
            return None
        return _union(docs)

    def prune(self, owner: str, below: int) -> None:
        """Drop entries of revisions below `below`."""
        if below > 0:
            self._log().delete(where={"$and": [{"collection": owner}, {"revision": {"$lt": below}}]})


def _union(docs: Iterable[str]) -> Change:
    added: set[str] = set()
    removed: set[str] = set()
    for doc in docs:
        part = json.loads(doc)
        added.update(part.get("added", ()))
        removed.update(part.get("removed", ()))
    return Change(frozenset(added), frozenset(removed))
