"""Sentence vectors and word-piece vectors of the evidence fit's abstracts, embedded once and kept on disk."""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from assistant.answering import scorer
from assistant.index.embed import PieceEmbedder
from assistant.text import sentences as sentence_code

if TYPE_CHECKING:
    from assistant.index.embed import Embedder


class SentenceVectors:
    """Sentence vectors and word-piece vectors per abstract, embedded once and kept on disk keyed by paper id and text."""

    def __init__(self, folder: Path, embedder: Embedder) -> None:
        if not isinstance(embedder, PieceEmbedder):
            raise SystemExit(f"error: the evidence fit needs word-piece vectors, which {embedder.name} does not give")
        self.folder = folder / f"sentvec-{re.sub(r'[^A-Za-z0-9._-]+', '_', embedder.name)}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.embedder = embedder

    def path(self, paper_id: str, abstract: str, kind: str = ".npy") -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", paper_id)[:80]
        return self.folder / f"{safe}-{hashlib.sha1(abstract.encode()).hexdigest()[:10]}{kind}"

    def prefetch(self, papers: Sequence[tuple[str, str]], batch: int = 512) -> int:
        """Embed the (paper id, abstract) pairs not cached yet; returns how many sentences were embedded."""
        todo = [(pid, a) for pid, a in dict(papers).items() if not self.path(pid, a, PIECES).exists()]
        done = 0
        while todo:
            group, size = [], 0
            while todo and size < batch:
                pid, abstract = todo.pop()
                texts = [abstract[s:e] for s, e in sentence_code.sentence_spans(abstract) or [(0, len(abstract))]]
                group.append((pid, abstract, texts))
                size += len(texts)
            vectors, pieces = self.embedder.embed_with_pieces([t for _, _, ts in group for t in ts])
            at = 0
            for pid, abstract, texts in group:
                np.save(self.path(pid, abstract), np.asarray(vectors[at : at + len(texts)], dtype=np.float32))
                part = [p.vectors for p in pieces[at : at + len(texts)]]
                np.savez(self.path(pid, abstract, PIECES), *part)
                at += len(texts)
            done += size
            print(f"embedded {done} sentences, {len(todo)} abstracts to go", file=sys.stderr, flush=True)
        return done

    def get(self, paper_id: str, abstract: str) -> np.ndarray:
        return np.asarray(np.load(self.path(paper_id, abstract)), dtype=np.float32)

    def pieces(self, paper_id: str, abstract: str) -> tuple[np.ndarray, ...]:
        stored = np.load(self.path(paper_id, abstract, PIECES))
        return tuple(stored[f"arr_{i}"] for i in range(len(stored.files)))

    def question_pieces(self, questions: Sequence[str], bar: float) -> dict[str, scorer.QueryPieces]:
        """Each question's content word pieces (questions are few: embedded each run, not stored)."""
        unique = sorted(set(questions))
        _, pieces = self.embedder.embed_with_pieces(unique)
        content = [scorer.content_pieces(p.tokens, p.vectors) for p in pieces]
        return {q: scorer.QueryPieces(c, bar) for q, c in zip(unique, content, strict=True)}


PIECES = ".pieces.npz"
