"""Evidence per paper: the abstract sentences most relevant to the question, with spans."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from assistant import vectors
from assistant.index.embed import Embedder
from assistant.models import Evidence, PaperHit, Sentence
from assistant.text.sentences import sentence_spans
from assistant.text.words import stems

__all__ = ["EvidenceBuilder", "lexical_overlap", "stems"]  # `stems` stays importable here for evals.metrics

_Spans = list[tuple[int, int]]


def lexical_overlap(question_stems: set[str], sentence: str) -> float:
    """Share of the question's content stems that the sentence contains."""
    if not question_stems:
        return 0.0
    return len(question_stems & stems(sentence)) / len(question_stems)


def _authors(meta: dict[str, object]) -> tuple[str, ...]:
    raw = str(meta.get("authors", ""))
    return tuple(a.strip() for a in raw.split(";") if a.strip())


@dataclass(frozen=True)
class _Question:
    """What each sentence is scored against: the question's vector and its stems."""

    vector: Sequence[float]
    stems: set[str]


class EvidenceBuilder:
    """Scores every sentence of each retrieved abstract against the question; safe to share between threads."""

    def __init__(self, embedder: Embedder, sentences: int = 3, dense_weight: float = 0.75, cache_size: int = 2048) -> None:
        self.embedder = embedder
        self.sentences = sentences
        self.dense_weight = dense_weight
        self._cache: OrderedDict[str, tuple[_Spans, list[list[float]]]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _sentence_vectors(self, hits: Sequence[PaperHit]) -> dict[str, tuple[_Spans, list[list[float]]]]:
        """Sentence spans and vectors per paper, embedding only what the cache lacks in one batch."""
        keys = {hit.paper_id: f"{hit.paper_id}:{hit.metadata.get('hash', '')}" for hit in hits}
        with self._lock:
            found = {key: self._cache[key] for key in keys.values() if key in self._cache}
        missing = [(keys[h.paper_id], h.abstract, sentence_spans(h.abstract) or [(0, len(h.abstract))])
                   for h in hits if keys[h.paper_id] not in found]
        if missing:
            # Embedded outside the lock, so one slow batch does not hold up other questions.
            embedded = self.embedder.embed([abstract[s:e] for _, abstract, spans in missing for s, e in spans])
            at = 0
            for key, _, spans in missing:
                found[key] = (spans, embedded[at : at + len(spans)])
                at += len(spans)
        with self._lock:
            for key, entry in found.items():
                self._cache[key] = entry
                self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return {paper_id: found[key] for paper_id, key in keys.items()}

    def build(self, question: str, hits: Sequence[PaperHit], query_vector: Sequence[float] | None = None) -> list[Evidence]:
        """One Evidence per hit, in the hits' order; sentences in abstract order."""
        if not hits:
            return []
        qv = query_vector if query_vector is not None else self.embedder.embed_query(question)
        asked = _Question(qv, stems(question))
        per_paper = self._sentence_vectors(hits)
        out: list[Evidence] = []
        for hit in hits:
            spans, vecs = per_paper[hit.paper_id]
            scored = self._score(hit.abstract, spans, vecs, asked)
            best = sorted(scored, key=lambda x: -x.score)[: self.sentences]
            out.append(
                Evidence(
                    paper_id=hit.paper_id,
                    title=hit.title,
                    abstract=hit.abstract,
                    score=hit.score,
                    sentences=tuple(sorted(best, key=lambda x: x.start)),
                    year=hit.metadata.get("year") if isinstance(hit.metadata.get("year"), int) else None,  # type: ignore[arg-type]
                    authors=_authors(hit.metadata),
                    url=str(hit.metadata["url"]) if hit.metadata.get("url") else None,
                )
            )
        return out

    def all_sentences(self, hit: PaperHit, question: str, query_vector: Sequence[float]) -> list[Sentence]:
        """Every sentence of one abstract with its relevance score, in abstract order."""
        spans, vecs = self._sentence_vectors([hit])[hit.paper_id]
        return self._score(hit.abstract, spans, vecs, _Question(query_vector, stems(question)))

    def paper_vector(self, hit: PaperHit) -> npt.NDArray[np.float64]:
        """The mean of an abstract's sentence vectors: where the paper sits, for grouping papers by theme."""
        _, vecs = self._sentence_vectors([hit])[hit.paper_id]
        return vectors.mean(vecs)

    def _score(self, abstract: str, spans: _Spans, vecs: list[list[float]], asked: _Question) -> list[Sentence]:
        """Each span's sentence scored by dense similarity to the question, mixed with its share of the question's stems."""
        w = self.dense_weight
        dense = vectors.dots(asked.vector, vecs)
        return [
            Sentence(abstract[s:e], s, e, w * d + (1 - w) * lexical_overlap(asked.stems, abstract[s:e]))
            for (s, e), d in zip(spans, dense, strict=True)
        ]
