"""Evidence per paper: every abstract sentence scored by the fitted evidence model, the best ones kept, with spans."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import cached_property

import numpy as np
import numpy.typing as npt

from assistant import vectors
from assistant.answering.answerability import is_claim_check, load_claim_model, question_features
from assistant.answering.lookups import load_lookup_model, lookup_features
from assistant.answering.quotes import load_quote_model
from assistant.answering.scorer import (
    EvidenceModel,
    PaperSentences,
    QueryPieces,
    TermStats,
    content_pieces,
    feature_matrix,
    is_boilerplate,
    load_model,
    split_by_paper,
)
from assistant.answering.termstats import CollectionTermStats
from assistant.index.embed import Embedder, PieceEmbedder, Pieces
from assistant.models import Evidence, PaperHit, Sentence
from assistant.text.sentences import sentence_spans

__all__ = ["EvidenceBuilder"]

_Spans = list[tuple[int, int]]
# Spans, sentence vectors and (when the embedder gives them) each sentence's word-piece vectors.
_Entry = tuple[_Spans, npt.NDArray[np.float32], tuple[npt.NDArray[np.float16], ...] | None]


def _authors(meta: dict[str, object]) -> tuple[str, ...]:
    raw = str(meta.get("authors", ""))
    return tuple(a.strip() for a in raw.split(";") if a.strip())


def _evidence(hit: PaperHit, best: float, keep: list[Sentence]) -> Evidence:
    year = hit.metadata.get("year")
    return Evidence(
        paper_id=hit.paper_id,
        title=hit.title,
        abstract=hit.abstract,
        score=hit.score,
        sentences=tuple(keep),
        year=year if isinstance(year, int) else None,
        authors=_authors(hit.metadata),
        url=str(hit.metadata["url"]) if hit.metadata.get("url") else None,
        best=best,
    )


class EvidenceBuilder:
    """Scores every sentence of each retrieved abstract with the evidence model; safe to share between threads.

    A sentence's score is the model's probability that it answers the question; a paper's best is its highest. Each
    paper quotes, in the quote ranker's order (the scorer's without one), its first sentence and up to
    `sentences - 1` more that reach the model's refusal bar (the probability below which a sentence is no evidence at
    all). A claim check also gets the claim model's probability that the pool settles it.
    """

    def __init__(
        self, embedder: Embedder, stats: TermStats | CollectionTermStats, sentences: int = 3, model: EvidenceModel | None = None
    ) -> None:
        self.embedder = embedder
        self.stats = stats
        self.sentences = sentences
        self._given = model
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        # An abstract's word-piece vectors take about 200 KB (float16), its sentence vectors 15 KB (float32 arrays, not
        # lists of Python floats, which took 110 KB): 1,024 abstracts stay near 220 MB.
        self._cache_size = 1024
        self._asked: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()

    # The committed models load at first use, so that a refit can retrieve with a parameters file of older features.
    @cached_property
    def model(self) -> EvidenceModel:
        return self._given or load_model()

    @cached_property
    def claims(self) -> EvidenceModel | None:
        return load_claim_model() if self._given is None else None

    @cached_property
    def lookups(self) -> EvidenceModel | None:
        return load_lookup_model() if self._given is None else None

    @cached_property
    def quotes(self) -> EvidenceModel | None:
        return load_quote_model() if self._given is None else None

    def _sentence_vectors(self, hits: Sequence[PaperHit]) -> dict[str, _Entry]:
        """Sentence spans, vectors and word pieces per paper, embedding only what the cache lacks in one batch."""
        keys = {hit.paper_id: f"{hit.paper_id}:{hit.metadata.get('hash', '')}" for hit in hits}
        with self._lock:
            found = {key: self._cache[key] for key in keys.values() if key in self._cache}
        missing = [
            (keys[h.paper_id], h.abstract, sentence_spans(h.abstract) or [(0, len(h.abstract))])
            for h in hits
            if keys[h.paper_id] not in found
        ]
        if missing:
            # Embedded outside the lock, so one slow batch does not hold up other questions.
            texts = [abstract[s:e] for _, abstract, spans in missing for s, e in spans]
            embedded, pieces = self._embed(texts)
            at = 0
            for key, _, spans in missing:
                part = tuple(p.vectors for p in pieces[at : at + len(spans)]) if pieces is not None else None
                found[key] = (spans, np.asarray(embedded[at : at + len(spans)], dtype=np.float32), part)
                at += len(spans)
        with self._lock:
            for key, entry in found.items():
                self._cache[key] = entry
                self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return {paper_id: found[key] for paper_id, key in keys.items()}

    def _embed(self, texts: list[str]) -> tuple[list[list[float]], list[Pieces] | None]:
        """Sentence vectors and, from an embedder that has them, word-piece vectors from the same pass."""
        if isinstance(self.embedder, PieceEmbedder):
            return self.embedder.embed_with_pieces(texts)
        return self.embedder.embed(texts), None

    def embed_question(self, question: str) -> list[float]:
        """The question's vector; with word pieces in use, from the pass that also gives its pieces, which are kept for
        scoring, so a question is embedded once, not once for its vector and again for its pieces."""
        if not isinstance(self.embedder, PieceEmbedder) or self.model.piece_bar is None:
            return self.embedder.embed_query(question)
        vectors, pieces = self.embedder.embed_with_pieces([question])
        self._keep_pieces(question, pieces[0])
        return vectors[0]

    def _keep_pieces(self, question: str, piece: Pieces) -> npt.NDArray[np.float32]:
        rows = content_pieces(piece.tokens, piece.vectors)
        with self._lock:
            self._asked[question] = rows
            self._asked.move_to_end(question)
            while len(self._asked) > 64:
                self._asked.popitem(last=False)
        return rows

    def _question_pieces(self, question: str) -> QueryPieces | None:
        """The question's content word pieces, or None when the embedder has none or the model does not use them.

        Kept for the last few texts: one question is scored several times (per mode, aspect or subject)."""
        bar = self.model.piece_bar
        if not isinstance(self.embedder, PieceEmbedder) or bar is None:
            return None
        with self._lock:
            rows = self._asked.get(question)
        if rows is None:
            rows = self._keep_pieces(question, self.embedder.embed_with_pieces([question])[1][0])
        return QueryPieces(rows, bar)

    def clear_cache(self) -> None:
        """Forget every abstract's embedded sentences (the next questions embed them again)."""
        with self._lock:
            self._cache.clear()

    def term_stats(self) -> TermStats:
        """The collection's term statistics as of now."""
        return self.stats.current() if isinstance(self.stats, CollectionTermStats) else self.stats

    def stated(self, question: str, evidence: Sequence[Evidence]) -> float | None:
        """The lookup model's probability that the best paper states what `question` asks for (None: no model)."""
        if self.lookups is None:
            return None
        return float(self.lookups.probability(lookup_features(question, evidence, self.term_stats())[None, :])[0])

    def score(self, question: str, hits: Sequence[PaperHit], query_vector: Sequence[float]) -> list[list[Sentence]]:
        """Every sentence of each hit with its probability of answering, in abstract order."""
        return self._scored(question, hits, query_vector)[0]

    def _scored(
        self, question: str, hits: Sequence[PaperHit], query_vector: Sequence[float]
    ) -> tuple[list[list[Sentence]], float | None, list[npt.NDArray[np.float64]]]:
        """The scored sentences, for a claim check the probability that they settle it (None otherwise), and each
        sentence's quote order key."""
        if not hits:
            return [], None, []
        per_paper = self._sentence_vectors(hits)
        papers = []
        for hit in hits:
            spans, vecs, pieces = per_paper[hit.paper_id]
            texts = tuple(hit.abstract[s:e] for s, e in spans)
            papers.append(PaperSentences(hit.paper_id, hit.title, hit.score, hit.dense, texts, np.asarray(vecs), pieces))
        x = feature_matrix(question, query_vector, papers, self.term_stats(), self._question_pieces(question))
        probs = self.model.probability(x)
        order = probs if self.quotes is None else self.quotes.probability(x)
        settled = None
        if self.claims is not None and is_claim_check(question):
            paper = np.repeat(np.arange(len(papers)), [len(p.sentences) for p in papers])
            settled = float(self.claims.probability(question_features(x, probs, paper)[None, :])[0])
        scored = [
            [Sentence(hit.abstract[s:e], s, e, float(p)) for (s, e), p in zip(per_paper[hit.paper_id][0], ps, strict=True)]
            for hit, ps in zip(hits, split_by_paper(probs, papers), strict=True)
        ]
        return scored, settled, split_by_paper(order, papers)

    def build(self, question: str, hits: Sequence[PaperHit], query_vector: Sequence[float] | None = None) -> list[Evidence]:
        """One Evidence per hit, in the hits' order; its quoted sentences in quote order (the lead first)."""
        return self.assess(question, hits, query_vector)[0]

    def assess(
        self, question: str, hits: Sequence[PaperHit], query_vector: Sequence[float] | None = None
    ) -> tuple[list[Evidence], float | None]:
        """The evidence of `build`, and for a claim check the probability that it settles the claim."""
        qv = query_vector if query_vector is not None else self.embedder.embed_query(question)
        scored, settled, order = self._scored(question, hits, qv)
        out = []
        for hit, sentences, keys in zip(hits, scored, order, strict=True):
            ranked = [s for _, s in sorted(zip(keys, sentences, strict=True), key=lambda ks: (-ks[0], ks[1].start))]
            # Boilerplate (code availability, contribution lists) is never quoted as an answer, whatever its score.
            quotable = [s for s in ranked if not is_boilerplate(s.text)] or ranked
            keep = quotable[:1] + [s for s in quotable[1 : self.sentences] if s.score >= self.model.refusal_bar]
            out.append(_evidence(hit, max((s.score for s in sentences), default=0.0), keep))
        return out, settled

    def all_sentences(self, hit: PaperHit, question: str, query_vector: Sequence[float]) -> list[Sentence]:
        """Every sentence of one abstract with its probability of answering `question`, in abstract order."""
        return self.score(question, [hit], query_vector)[0]

    def paper_vector(self, hit: PaperHit) -> npt.NDArray[np.float64]:
        """The mean of an abstract's sentence vectors: where the paper sits, for grouping papers by theme."""
        _, vecs, _ = self._sentence_vectors([hit])[hit.paper_id]
        return vectors.mean(vecs)
