"""BM25 over whole papers, read from the chunk index: each paper is the concatenation of its chunks.

A chunk holds 160 tokens, so chunk BM25 misses a paper whose query terms are spread over its abstract. Scoring the
paper needs no second index: a paper's term count is the sum over its chunks' postings and its length the sum of
their lengths, so this follows every incremental update of the chunk index at no cost. The title, prepended to
every chunk, counts once per chunk, which weights it like a field boost. Measured on SciFact train in
docs/benchmarks.md, with its own k1 and b (a low k1: the overlap between chunks repeats terms).
"""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass

import numpy as np

from assistant.index.lexical import LexicalIndex

K1, B = 0.6, 0.5


@dataclass(frozen=True)
class PaperLayout:
    """Which paper each slot of the chunk index belongs to, and the live papers' lengths."""

    papers: tuple[str, ...]
    slot_paper: tuple[np.ndarray, ...]  # per segment: paper number of each document
    live: tuple[np.ndarray, ...]  # per segment: bool, not removed
    lengths: np.ndarray  # tokens per paper over its live chunks
    count: int  # papers with at least one live chunk

    @classmethod
    def of(cls, index: LexicalIndex) -> PaperLayout:
        number: dict[str, int] = {}
        slot_paper = tuple(
            np.fromiter((number.setdefault(_paper_of(cid), len(number)) for cid in seg.ids), np.int64, len(seg.ids))
            for seg in index.bm25.segments
        )
        live = tuple(~dead for dead in index.bm25.dead)
        lengths = np.zeros(len(number))
        for seg, papers, alive in zip(index.bm25.segments, slot_paper, live, strict=True):
            lengths += np.bincount(papers[alive], seg.lengths[alive], minlength=len(number))
        return cls(tuple(number), slot_paper, live, lengths, int((lengths > 0).sum()))


def _paper_of(chunk_id: str) -> str:
    return chunk_id.rsplit(":", 1)[0]


_layouts: weakref.WeakKeyDictionary[LexicalIndex, PaperLayout] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def layout(index: LexicalIndex) -> PaperLayout:
    """The paper layout of an index, worked out once per index (an index never changes once built)."""
    with _lock:
        found = _layouts.get(index)
    if found is None:
        found = PaperLayout.of(index)
        with _lock:
            _layouts[index] = found
    return found


def _term_counts(index: LexicalIndex, where: PaperLayout, term: int) -> tuple[np.ndarray, np.ndarray]:
    """(paper numbers, summed term counts) of the live papers holding the term."""
    papers, counts = [], []
    for seg, slot_paper, live in zip(index.bm25.segments, where.slot_paper, where.live, strict=True):
        if term >= seg.vocab_end:
            continue
        lo, hi = seg.term_ptr[term], seg.term_ptr[term + 1]
        docs = seg.post_doc[lo:hi]
        alive = live[docs]
        papers.append(slot_paper[docs[alive]])
        counts.append(seg.post_tf[lo:hi][alive])
    if not papers:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    held, at = np.unique(np.concatenate(papers), return_inverse=True)
    return held, np.bincount(at, np.concatenate(counts), minlength=len(held))


def search_papers(index: LexicalIndex, query: str, k: int, k1: float = K1, b: float = B) -> list[tuple[str, float]]:
    """The k best (paper id, BM25 score) pairs, ties by paper id; papers without a query term are left out."""
    vocab = index.bm25.vocab
    tokens = index.tokenize([query])[0] if query.strip() else []
    terms = [vocab[t] for t in tokens if t in vocab]
    where = layout(index)
    if not terms or not where.count or k <= 0:
        return []
    avgdl = float(where.lengths.sum()) / where.count
    scores = np.zeros(len(where.papers))
    for term in dict.fromkeys(terms):
        held, tf = _term_counts(index, where, term)
        if not len(held):
            continue
        idf = math.log(1 + (where.count - len(held) + 0.5) / (len(held) + 0.5))
        norm = k1 * ((1 - b) + b * where.lengths[held] / avgdl)
        scores[held] += terms.count(term) * idf * tf / (tf + norm)  # a repeated query term counts again, as in chunk BM25
    top = np.flatnonzero(scores > 0)
    if len(top) > k:  # everything scoring at least the k-th best, so that ties at the cut are broken by id below
        found = scores[top]
        top = top[found >= np.partition(found, len(found) - k)[len(found) - k]]
    ranked = sorted(((where.papers[i], float(scores[i])) for i in top), key=lambda r: (-r[1], r[0]))
    return ranked[:k]
