"""Each indexed chunk's stored record, kept beside its BM25 segment so that a query's returned papers need no second
round trip to the store.

A record is the chunk's stored metadata, and its document only when the metadata lacks the text (the store reads the
document only then). Per segment the records are JSON in slot order, in one bytes file with an int64 offsets array;
once saved, a query process reads the records it returns from the file, one read each, so its resident memory does
not grow with the corpus. An update writes only its new segment's records, as it does its postings.
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.index.bm25 import Bm25, Segment, link_all
from assistant.models import Passage


def passage_of(
    chunk_id: str, document: str | None, meta: Mapping[str, Any] | None, score: float, dense: float | None = None
) -> Passage:
    """A chunk as a Passage, from its stored document and metadata."""
    meta = dict(meta or {})
    return Passage(
        chunk_id=chunk_id,
        paper_id=str(meta.get("paper_id", chunk_id.rsplit(":", 1)[0])),
        title=str(meta.get("title", "")),
        text=str(meta.get("text", document or "")),
        score=score,
        dense=dense,
        metadata=meta,
    )


def encode(document: str | None, meta: Mapping[str, Any] | None) -> bytes:
    """One chunk's record as stored; never empty (an empty row is a chunk without a record)."""
    bare = not meta or "text" not in meta
    return json.dumps([meta, document if bare else None], ensure_ascii=False).encode()


class RecordFile:
    """A saved records file, read a record at a time (pread): mapping it instead would count every page a query
    touches, and the pages around it, in the process's resident memory until it held the whole file."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDONLY)
        # The descriptor outlives the file's name: a folder swapped away by a later save stays readable.
        weakref.finalize(self, os.close, self.fd)
        self.size = os.fstat(self.fd).st_size

    def read(self, start: int, end: int) -> bytes:
        data = os.pread(self.fd, end - start, start)
        if len(data) != end - start:
            raise OSError(f"records file cut short: {len(data)} bytes at {start}, {end - start} expected")
        return data


@dataclass(frozen=True, eq=False)
class SegmentRecords:
    """One segment's records in slot order: row `d` is bytes offsets[d]:offsets[d + 1] of `data` (in memory, until
    saved) or of `file` (once saved), empty when the chunk has none."""

    offsets: np.ndarray  # int64 (slots + 1)
    data: bytes = b""
    file: RecordFile | None = None

    @classmethod
    def of(cls, rows: Sequence[bytes]) -> SegmentRecords:
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows)), out=offsets[1:])
        return cls(offsets, b"".join(rows))

    def row(self, slot: int) -> bytes:
        start, end = int(self.offsets[slot]), int(self.offsets[slot + 1])
        if self.file is None:
            return self.data[start:end]
        return self.file.read(start, end) if end > start else b""

    def rows(self, slots: np.ndarray) -> list[bytes]:
        """Many rows, the file read once."""
        data = self.everything()
        return [data[self.offsets[d] : self.offsets[d + 1]] for d in slots]

    def everything(self) -> bytes:
        return self.data if self.file is None else self.file.read(0, int(self.offsets[-1]))

    @staticmethod
    def files(name: str) -> list[str]:
        return [f"{name}.records.bin", f"{name}.records.npy"]

    def save(self, folder: Path, name: str) -> None:
        data, offsets = self.files(name)
        (folder / data).write_bytes(self.everything())
        np.save(folder / offsets, self.offsets)

    @classmethod
    def load(cls, folder: Path, name: str) -> SegmentRecords:
        data_file, offsets_file = cls.files(name)
        offsets = np.load(folder / offsets_file)
        file = RecordFile(folder / data_file)
        if file.size != offsets[-1]:
            raise ValueError(f"{folder / data_file} holds {file.size} bytes, its offsets {int(offsets[-1])}")
        return cls(offsets, file=file)


@dataclass(frozen=True, eq=False)
class Records:
    """The records of an index's segments, by segment name; a segment missing here holds none."""

    segments: Mapping[str, SegmentRecords] = field(default_factory=dict)

    def with_segment(self, name: str, rows: Sequence[bytes]) -> Records:
        """These records with a new segment's rows added (none when no row holds a record)."""
        return Records({**self.segments, name: SegmentRecords.of(rows)}) if any(rows) else self

    def kept(self, bm25: Bm25) -> Records:
        """Only the records of the segments `bm25` still has."""
        return Records({s.name: self.segments[s.name] for s in bm25.segments if s.name in self.segments})

    def merged(self, old: Bm25, new: Bm25) -> Records:
        """The records of `old`'s live chunks, in the order Bm25.merged puts them into `new`'s one segment."""
        rows: list[bytes] = []
        for seg, dead in zip(old.segments, old.dead, strict=True):
            held = self.segments.get(seg.name)
            live = np.flatnonzero(~dead)
            rows.extend(held.rows(live) if held is not None else [b""] * len(live))
        return Records().with_segment(new.segments[0].name, rows) if new.segments else Records()

    def passages(self, found: Mapping[str, tuple[str, int]]) -> dict[str, Passage]:
        """Passages (score 0, as the store gives them) of chunks at (segment name, slot); those without a record are left out."""
        out = {}
        for chunk_id, (name, slot) in found.items():
            held = self.segments.get(name)
            row = held.row(slot) if held is not None else b""
            if row:
                meta, document = json.loads(row)
                out[chunk_id] = passage_of(chunk_id, document, meta, 0.0)
        return out

    def save(self, folder: Path, reuse: Path | None) -> Records:
        """Write every segment's records into `folder`, hard-linking those already in `reuse`; returns them read from
        the files written, so that a built index stops holding them in memory."""
        for name, held in self.segments.items():
            if reuse is None or not link_all(reuse, folder, SegmentRecords.files(name)):
                held.save(folder, name)
        return Records.load(folder, list(self.segments))

    @classmethod
    def load(cls, folder: Path, names: Sequence[str]) -> Records:
        return cls({name: SegmentRecords.load(folder, name) for name in names})


class Slots:
    """Where each live chunk is (segment name, slot), found through its id's hash in a sorted array: 16 bytes a chunk,
    where a dict of a million ids would hold about a hundred."""

    def __init__(self, segments: Sequence[Segment], dead: Sequence[np.ndarray], ids: Sequence[str]) -> None:
        live = np.flatnonzero(~np.concatenate(dead)) if dead else np.zeros(0, dtype=np.int64)
        hashes = np.fromiter((hash(ids[int(s)]) for s in live), dtype=np.int64, count=len(live))
        order = np.argsort(hashes, kind="stable")
        self._hashes, self._slots, self._ids = hashes[order], live[order], ids
        self._starts = np.cumsum([0, *(len(s.ids) for s in segments)])
        self._names = [s.name for s in segments]

    def find(self, ids: Sequence[str]) -> dict[str, tuple[str, int]]:
        """(segment name, slot) of each of these ids that is live; others are left out."""
        if not ids or not len(self._slots):
            return {}
        wanted = np.fromiter((hash(i) for i in ids), dtype=np.int64, count=len(ids))
        lows, highs = np.searchsorted(self._hashes, wanted, "left"), np.searchsorted(self._hashes, wanted, "right")
        out = {}
        for chunk_id, lo, hi in zip(ids, lows, highs, strict=True):
            for slot in self._slots[lo:hi]:  # more than one only when two ids' hashes collide
                if self._ids[slot] == chunk_id:
                    seg = int(np.searchsorted(self._starts, slot, "right")) - 1
                    out[chunk_id] = (self._names[seg], int(slot - self._starts[seg]))
        return out
