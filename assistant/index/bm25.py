"""A segmented BM25 index that absorbs new and removed documents without re-reading the rest.

bm25s precomputes every (document, term) score, so one new document changes the average length and every score with
it: it can only be rebuilt. Here scores are computed at query time from term frequencies and global statistics
(live document count, document frequencies, total length), so an update appends a small segment, marks removed
documents dead and adjusts the statistics; every score equals the one a full rebuild of the same documents gives.
Scoring is bm25s's default (Lucene's BM25, k1 1.5, b 0.75), so results match the bm25s index this replaces.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

K1, B = 1.5, 0.75
_ARRAYS = ("doc_ptr", "doc_terms", "doc_tf", "term_ptr", "post_doc", "post_tf")
# The doc-major arrays (the tokenised corpus) are read only when documents are removed or segments merged.
_MAPPED = {"doc_terms", "doc_tf"}


@dataclass(frozen=True, eq=False)
class Segment:
    """Documents as term counts, both doc-major (the tokenised corpus) and term-major (postings); never changed.

    Term ids are global: a segment's terms are ids below `vocab_end`, and ids from `vocab_start` on were first
    seen in it, in the order of `new_terms`.
    """

    name: str  # unique: names its files, so a saved copy can be reused by a later save instead of rewritten
    ids: tuple[str, ...]
    doc_ptr: np.ndarray  # int64 (documents + 1)
    doc_terms: np.ndarray  # int32: each document's distinct term ids
    doc_tf: np.ndarray  # int32: their counts
    term_ptr: np.ndarray  # int64 (vocab_end + 1)
    post_doc: np.ndarray  # int32: the documents holding each term
    post_tf: np.ndarray  # float64: the term's count in each of them
    new_terms: tuple[str, ...]
    vocab_start: int
    lengths: np.ndarray = field(init=False)  # int64 token count of each document

    def __post_init__(self) -> None:
        rows = np.repeat(np.arange(len(self.ids)), np.diff(self.doc_ptr))
        lengths = np.bincount(rows, weights=self.doc_tf, minlength=len(self.ids)).astype(np.int64)
        object.__setattr__(self, "lengths", lengths)

    @property
    def vocab_end(self) -> int:
        return len(self.term_ptr) - 1

    @classmethod
    def from_counts(
        cls, ids: Sequence[str], rows: np.ndarray, terms: np.ndarray, counts: np.ndarray, vocab: tuple[int, Sequence[str]]
    ) -> Segment:
        """A segment from (document row, term id, count) triples, each (row, term) pair at most once; `vocab` is
        (first id new in this segment, the new terms), the terms' ids all below their end."""
        start, new_terms = vocab
        end = start + len(new_terms)
        by_doc = np.lexsort((terms, rows))
        doc_ptr = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(ids)), out=doc_ptr[1:])
        by_term = np.lexsort((rows, terms))
        term_ptr = np.zeros(end + 1, dtype=np.int64)
        np.cumsum(np.bincount(terms, minlength=end), out=term_ptr[1:])
        return cls(
            f"seg-{uuid.uuid4().hex[:12]}",
            tuple(ids),
            doc_ptr,
            terms[by_doc].astype(np.int32),
            counts[by_doc].astype(np.int32),
            term_ptr,
            rows[by_term].astype(np.int32),
            counts[by_term].astype(np.float64),
            tuple(new_terms),
            start,
        )

    def term_ids_of(self, docs: np.ndarray) -> np.ndarray:
        """The distinct term ids of these documents, once per document holding them."""
        if not len(docs):
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([self.doc_terms[self.doc_ptr[d] : self.doc_ptr[d + 1]] for d in docs]).astype(np.int64)

    def save(self, folder: Path) -> None:
        for name in _ARRAYS:
            np.save(folder / f"{self.name}.{name}.npy", getattr(self, name))
        info = {"ids": list(self.ids), "new_terms": list(self.new_terms), "vocab_start": self.vocab_start}
        (folder / f"{self.name}.json").write_text(json.dumps(info))

    def files(self) -> list[str]:
        return [f"{self.name}.json", *(f"{self.name}.{n}.npy" for n in _ARRAYS)]

    @classmethod
    def load(cls, folder: Path, name: str) -> Segment:
        info = json.loads((folder / f"{name}.json").read_text())
        arrays = {n: np.load(folder / f"{name}.{n}.npy", mmap_mode="r" if n in _MAPPED else None) for n in _ARRAYS}
        return cls(name, tuple(info["ids"]), new_terms=tuple(info["new_terms"]), vocab_start=int(info["vocab_start"]), **arrays)


def counts_of(token_ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, term, count) triples of tokenised documents: each document's distinct terms with their counts."""
    sizes = np.fromiter((len(t) for t in token_ids), dtype=np.int64, count=len(token_ids))
    flat = np.fromiter((t for doc in token_ids for t in doc), dtype=np.int64, count=int(sizes.sum()))
    rows = np.repeat(np.arange(len(token_ids), dtype=np.int64), sizes)
    width = int(flat.max()) + 1 if len(flat) else 1
    keys, counts = np.unique(rows * width + flat, return_counts=True)
    return keys // width, keys % width, counts


@dataclass(frozen=True, eq=False)
class Bm25:
    """Segments, the documents removed from them, and the global statistics BM25 needs; replaced whole on update."""

    vocab: Mapping[str, int]
    segments: tuple[Segment, ...]
    dead: tuple[np.ndarray, ...]  # per segment: bool, removed documents
    df: np.ndarray  # int64 per term id: live documents holding it
    docs: int
    total: int  # tokens in live documents

    @classmethod
    def build(cls, token_lists: Sequence[Sequence[str]], ids: Sequence[str]) -> Bm25:
        """A single-segment index of tokenised documents."""
        return cls.empty().absorb({}, list(zip(ids, token_lists, strict=True)))

    @classmethod
    def empty(cls) -> Bm25:
        return cls({}, (), (), np.zeros(0, dtype=np.int64), 0, 0)

    @property
    def slots(self) -> int:
        return sum(len(s.ids) for s in self.segments)

    def live_ids(self) -> list[str]:
        """Ids of the live documents, in slot order."""
        return [i for s, dead in zip(self.segments, self.dead, strict=True) for i, d in zip(s.ids, dead, strict=True) if not d]

    def absorb(self, slots: Mapping[str, tuple[int, int]], added: Sequence[tuple[str, Sequence[str]]]) -> Bm25:
        """Remove the documents at `slots` (id -> (segment, document)) and append `added` (id, tokens) as a segment."""
        dead = [d.copy() for d in self.dead]
        df = self.df.copy()
        docs, total = self.docs, self.total
        for seg_no, seg in enumerate(self.segments):
            gone = np.array(sorted(d for s, d in slots.values() if s == seg_no), dtype=np.int64)
            gone = gone[~dead[seg_no][gone]] if len(gone) else gone
            if len(gone):
                dead[seg_no][gone] = True
                np.subtract.at(df, seg.term_ids_of(gone), 1)
                docs, total = docs - len(gone), total - int(seg.lengths[gone].sum())
        segments = list(self.segments)
        vocab = self.vocab
        if added:
            vocab = dict(self.vocab)
            start = len(vocab)
            token_ids = [[vocab.setdefault(t, len(vocab)) for t in tokens] for _, tokens in added]
            rows, terms, counts = counts_of(token_ids)
            seg = Segment.from_counts([i for i, _ in added], rows, terms, counts, (start, list(vocab)[start:]))
            df = np.concatenate([df, np.zeros(len(vocab) - len(df), dtype=np.int64)])
            df += np.bincount(terms, minlength=len(df))
            segments.append(seg)
            dead.append(np.zeros(len(seg.ids), dtype=bool))
            docs, total = docs + len(seg.ids), total + int(seg.lengths.sum())
        return Bm25(vocab, tuple(segments), tuple(dead), df, docs, total)

    def slot_map(self) -> dict[str, tuple[int, int]]:
        """Where each live document is: id -> (segment, document)."""
        return {
            i: (s, d)
            for s, (seg, dead) in enumerate(zip(self.segments, self.dead, strict=True))
            for d, i in enumerate(seg.ids)
            if not dead[d]
        }

    def merged(self) -> Bm25:
        """The same live documents in one segment (term ids and the vocabulary kept), dead ones dropped."""
        rows_all, terms_all, counts_all = [], [], []
        ids: list[str] = []
        for seg, dead in zip(self.segments, self.dead, strict=True):
            keep = ~dead
            flat_keep = np.repeat(keep, np.diff(seg.doc_ptr))  # per stored (document, term) pair
            renumbered = len(ids) + np.cumsum(keep) - 1  # the kept documents' rows in the merged segment
            rows_all.append(np.repeat(renumbered[keep], np.diff(seg.doc_ptr)[keep]))
            terms_all.append(np.asarray(seg.doc_terms)[flat_keep].astype(np.int64))
            counts_all.append(np.asarray(seg.doc_tf)[flat_keep].astype(np.int64))
            ids.extend(i for i, k in zip(seg.ids, keep, strict=True) if k)
        if not ids:
            return Bm25(self.vocab, (), (), self.df.copy(), 0, 0)
        rows, terms, counts = (np.concatenate(a) for a in (rows_all, terms_all, counts_all))
        seg = Segment.from_counts(ids, rows, terms, counts, (0, list(self.vocab)))
        return Bm25(self.vocab, (seg,), (np.zeros(len(ids), dtype=bool),), self.df.copy(), self.docs, self.total)

    @cached_property
    def _norms(self) -> tuple[np.ndarray, ...]:
        """Per segment, each document's K1 * (1 - B + B * length / avgdl): fixed for this index, so worked out once
        rather than for every posting of every query."""
        avgdl = self.total / self.docs if self.docs else 1.0
        return tuple(K1 * ((1 - B) + B * seg.lengths / avgdl) for seg in self.segments)

    @cached_property
    def _dead_slots(self) -> tuple[np.ndarray, ...]:
        return tuple(np.flatnonzero(dead) for dead in self.dead)

    def _spans(self, seg: Segment, term_ids: Sequence[int]) -> list[tuple[int, int, float]]:
        """Where each query term's postings lie in the segment, with the term's idf; repeated terms repeat."""
        spans = []
        for t in term_ids:
            if t >= seg.vocab_end:
                continue
            lo, hi = int(seg.term_ptr[t]), int(seg.term_ptr[t + 1])
            if lo < hi:
                df = int(self.df[t])
                spans.append((lo, hi, math.log(1 + (self.docs - df + 0.5) / (df + 0.5))))
        return spans

    def scores(self, term_ids: Sequence[int]) -> np.ndarray:
        """BM25 score of every slot (dead ones 0) for a query's term ids, repeated terms counted again as in bm25s."""
        if not self.docs:
            return np.zeros(self.slots)
        parts = []
        for seg, norm, dead in zip(self.segments, self._norms, self._dead_slots, strict=True):
            spans = self._spans(seg, term_ids)
            size = sum(hi - lo for lo, hi, _ in spans)
            docs, weights = np.empty(size, dtype=np.int32), np.empty(size)
            at = 0
            for lo, hi, idf in spans:  # each posting's idf * tf / (tf + norm), written in place: no temporaries
                held, out, tf = docs[at : at + hi - lo], weights[at : at + hi - lo], seg.post_tf[lo:hi]
                held[:] = seg.post_doc[lo:hi]
                np.take(norm, held, out=out)
                out += tf
                np.divide(idf * tf, out, out=out)
                at += hi - lo
            # bincount adds each document's terms in query order from 0.0, as `+=` term by term would: same floats.
            part = np.bincount(docs, weights, len(seg.ids))
            part[dead] = 0.0
            parts.append(part)
        return np.concatenate(parts) if len(parts) != 1 else parts[0]

    # -- files ---------------------------------------------------------------------------------------------------

    def save(self, folder: Path, reuse: Path | None) -> dict[str, object]:
        """Write the segments into `folder`, hard-linking those already saved in `reuse`; returns the manifest part."""
        for seg in self.segments:
            if reuse is None or not link_all(reuse, folder, seg.files()):
                seg.save(folder)
        dead = {s.name: np.flatnonzero(d).tolist() for s, d in zip(self.segments, self.dead, strict=True)}
        return {"segments": [s.name for s in self.segments], "dead": dead}

    @classmethod
    def load(cls, folder: Path, manifest: Mapping[str, object]) -> Bm25:
        names = manifest["segments"]
        dead_lists = manifest["dead"]
        assert isinstance(names, list) and isinstance(dead_lists, dict)
        segments = tuple(Segment.load(folder, n) for n in names)
        words: list[str] = []
        for seg in segments:
            if seg.vocab_start != len(words):
                raise ValueError(f"segment {seg.name} starts its terms at {seg.vocab_start}, not {len(words)}")
            words.extend(seg.new_terms)
        dead = tuple(_mask(len(s.ids), dead_lists.get(s.name, [])) for s in segments)
        df = np.zeros(len(words), dtype=np.int64)
        docs = total = 0
        for seg, gone in zip(segments, dead, strict=True):
            df[: seg.vocab_end] += np.diff(seg.term_ptr)
            np.subtract.at(df, seg.term_ids_of(np.flatnonzero(gone)), 1)
            docs += int((~gone).sum())
            total += int(seg.lengths[~gone].sum())
        return cls({w: i for i, w in enumerate(words)}, segments, dead, df, docs, total)


def _mask(n: int, dead: list[int]) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[np.asarray(dead, dtype=np.int64)] = True
    return mask


def link_all(source: Path, target: Path, names: list[str]) -> bool:
    """Hard-link files from another save (segments never change once written); False when any is gone."""
    try:
        for name in names:
            (target / name).hardlink_to(source / name)
    except OSError:
        for name in names:
            (target / name).unlink(missing_ok=True)
        return False
    return True
