"""Evidence per paper: the abstract sentences most relevant to the question, with spans."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache

from assistant.index.embed import Embedder
from assistant.models import Evidence, PaperHit, Sentence
from assistant.text.sentences import content_words, sentence_spans


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer("english")


def stems(text: str) -> set[str]:
    """Stemmed content words, for lexical overlap."""
    return set(_stemmer().stemWords(content_words(text)))


def lexical_overlap(question_stems: set[str], sentence: str) -> float:
    """Share of the question's content stems that the sentence contains."""
    if not question_stems:
        return 0.0
    return len(question_stems & stems(sentence)) / len(question_stems)


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return float(sum(x * y for x, y in zip(a, b, strict=False)))


def _authors(meta: dict[str, object]) -> tuple[str, ...]:
    raw = str(meta.get("authors", ""))
    return tuple(a.strip() for a in raw.split(";") if a.strip())


class EvidenceBuilder:
    """Scores every sentence of each retrieved abstract against the question."""

    def __init__(self, embedder: Embedder, sentences: int = 3, dense_weight: float = 0.75, cache_size: int = 2048) -> None:
        self.embedder = embedder
        self.sentences = sentences
        self.dense_weight = dense_weight
        self._cache: OrderedDict[str, tuple[list[tuple[int, int]], list[list[float]]]] = OrderedDict()
        self._cache_size = cache_size

    def _sentence_vectors(self, hits: Sequence[PaperHit]) -> dict[str, tuple[list[tuple[int, int]], list[list[float]]]]:
        """Sentence spans and vectors per paper, embedding only what the cache lacks in one batch."""
        missing: list[tuple[str, str, list[tuple[int, int]]]] = []
        for hit in hits:
            key = f"{hit.paper_id}:{hit.metadata.get('hash', '')}"
            if key not in self._cache:
                spans = sentence_spans(hit.abstract) or [(0, len(hit.abstract))]
                missing.append((key, hit.abstract, spans))
        if missing:
            texts = [abstract[s:e] for _, abstract, spans in missing for s, e in spans]
            vectors = self.embedder.embed(texts)
            at = 0
            for key, _, spans in missing:
                self._cache[key] = (spans, vectors[at : at + len(spans)])
                at += len(spans)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        out = {}
        for hit in hits:
            key = f"{hit.paper_id}:{hit.metadata.get('hash', '')}"
            self._cache.move_to_end(key)
            out[hit.paper_id] = self._cache[key]
        return out

    def build(self, question: str, hits: Sequence[PaperHit], query_vector: Sequence[float] | None = None) -> list[Evidence]:
        """One Evidence per hit, in the hits' order; sentences in abstract order."""
        if not hits:
            return []
        qv = query_vector if query_vector is not None else self.embedder.embed_query(question)
        q_stems = stems(question)
        vectors = self._sentence_vectors(hits)
        out: list[Evidence] = []
        for hit in hits:
            spans, vecs = vectors[hit.paper_id]
            abstract = hit.abstract
            scored = [
                Sentence(
                    text=abstract[s:e],
                    start=s,
                    end=e,
                    score=self.dense_weight * _dot(qv, v) + (1 - self.dense_weight) * lexical_overlap(q_stems, abstract[s:e]),
                )
                for (s, e), v in zip(spans, vecs, strict=True)
            ]
            best = sorted(scored, key=lambda x: -x.score)[: self.sentences]
            out.append(
                Evidence(
                    paper_id=hit.paper_id,
                    title=hit.title,
                    abstract=abstract,
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
        q_stems = stems(question)
        return [
            Sentence(
                hit.abstract[s:e],
                s,
                e,
                self.dense_weight * _dot(query_vector, v) + (1 - self.dense_weight) * lexical_overlap(q_stems, hit.abstract[s:e]),
            )
            for (s, e), v in zip(spans, vecs, strict=True)
        ]
