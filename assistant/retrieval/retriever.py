"""Hybrid retrieval: dense over chunks and BM25 over chunks and whole papers, fused and aggregated to papers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.config import Settings
from assistant.index.embed import Embedder
from assistant.index.lexical import LexicalCache
from assistant.index.paper_bm25 import search_papers
from assistant.index.store import ChunkStore
from assistant.models import Filters, PaperHit, Passage

# Why not llama-index's QueryFusionRetriever (core/retrievers/fusion_retriever.py), which has weighted
# relative_score (min-max), dist_based_score (mean ± 3 sd) and RRF modes:
# - it fuses nodes deduplicated by content hash, so a paper's chunks compete with each other; we rank papers, each
#   scored by its best chunk in each list, before fusing;
# - dist_based_score is our z-score up to an affine map, but a node one list missed scores 0 there (3 sd below that
#   list's mean) where ours scores the list's lowest returned paper, and its RRF fixes k at 60 with ranks from 0,
#   so its rankings differ from the ones docs/benchmarks.md measures;
# - it fuses a NodeWithScore per candidate; the hot path here fuses (id, score) tuples and fetches only the returned
#   papers' chunks.
# PaperRetriever (assistant/retrieval/llamaindex.py) offers this retrieval to llama-index query engines instead.


@dataclass(frozen=True)
class FusionParams:
    """How dense and BM25 evidence combine into one paper score."""

    method: str = "weighted"  # "weighted" (normalised weighted sum) or "rrf"
    dense_weight: float = 0.5
    # Share of the BM25 weight that goes to BM25 over whole papers (assistant/index/paper_bm25.py), the rest to chunk BM25;
    # off by default: it gained on SciFact train but not on test (docs/benchmarks.md).
    paper_share: float = 0.0
    normalise: str = "zscore"  # how "weighted" puts the score scales together: "zscore" or "minmax"
    rrf_k: int = 60
    candidates: int = 100
    chunks_per_paper: int = 1  # the best chunk carries the paper's metadata and whole abstract; more only cost fetch time

    @classmethod
    def from_settings(cls, settings: Settings) -> FusionParams:
        """The fusion the settings ask for; the rest keep the defaults above."""
        return cls(
            method=settings.fusion,
            dense_weight=settings.dense_weight,
            paper_share=settings.paper_lexical_share,
            candidates=settings.candidate_chunks,
            chunks_per_paper=settings.chunks_per_paper,
        )


# (chunk id, paper id, score), best first: what fusion needs from each list, with or without the stored text.
Ranked = Sequence[tuple[str, str, float]]


@dataclass(frozen=True)
class Fused:
    """One candidate paper after fusion: its score, best scores on each side, and its chunks best first."""

    paper_id: str
    score: float
    dense: float
    lexical: float
    chunk_ids: tuple[str, ...]


def _grouped(rows: Ranked) -> dict[str, list[tuple[str, float]]]:
    grouped: dict[str, list[tuple[str, float]]] = {}
    for chunk_id, paper_id, score in rows:
        grouped.setdefault(paper_id, []).append((chunk_id, score))
    for chunks in grouped.values():
        chunks.sort(key=lambda r: -r[1])
    return grouped


def _normalise(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    hi, lo = max(scores.values()), min(scores.values())
    span = hi - lo
    return {k: (v - lo) / span if span > 1e-9 else 1.0 for k, v in scores.items()}


def _standardise(scores: dict[str, float]) -> dict[str, float]:
    """z-scores: unlike min-max, one outlying top score does not squash the rest of its list towards zero."""
    if not scores:
        return {}
    values = list(scores.values())
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return {k: (v - mean) / sd if sd > 1e-9 else 0.0 for k, v in scores.items()}


def _weights(params: FusionParams, papers: bool) -> tuple[float, float, float]:
    """Weights of the dense, chunk BM25 and paper BM25 lists; without a paper list chunk BM25 takes all of BM25's."""
    share = params.paper_share if papers else 0.0
    return params.dense_weight, (1 - params.dense_weight) * (1 - share), (1 - params.dense_weight) * share


def _fused_scores(lists: Sequence[tuple[dict[str, float], float]], params: FusionParams) -> dict[str, float]:
    """One score per paper from per-list paper scores with their weights; lists weighted 0 are left out."""
    used = [(scores, w) for scores, w in lists if w > 0]
    papers = {pid for scores, _ in used for pid in scores}
    if params.method == "rrf":
        ranks = [{pid: i for i, pid in enumerate(sorted(scores, key=lambda p: (-scores[p], p)))} for scores, _ in used]
        return {pid: sum(1.0 / (params.rrf_k + rank[pid] + 1) for rank in ranks if pid in rank) for pid in papers}
    norm = _standardise if params.normalise == "zscore" else _normalise
    normed = [(n, min(n.values(), default=0.0), w) for n, w in ((norm(scores), w) for scores, w in used)]
    # A paper one list missed scores that list's floor: it ranked below everything the list returned.
    fused = {pid: sum(w * n.get(pid, floor) for n, floor, w in normed) for pid in papers}
    # Callers compare scores relative to the best (the summary bar, the evidence model's paper gap): keep them in [0, 1].
    return _normalise(fused)


def fuse_ranked(
    dense: Ranked, lexical: Ranked, params: FusionParams, limit: int | None = None, papers: Sequence[tuple[str, float]] = ()
) -> list[Fused]:
    """Aggregate chunk scores to papers (the best chunk decides) and fuse them with the paper-level BM25 list
    (paper id, score), best first.

    `limit` keeps only the best papers; every paper still counts towards the score normalisation.
    """
    d_best, l_best = _grouped(dense), _grouped(lexical)
    d_score = {pid: rows[0][1] for pid, rows in d_best.items()}
    l_score = {pid: rows[0][1] for pid, rows in l_best.items()}
    p_score = dict(papers)
    w_dense, w_chunks, w_papers = _weights(params, bool(p_score))
    fused = _fused_scores([(d_score, w_dense), (l_score, w_chunks), (p_score, w_papers)], params)
    order = sorted(fused, key=lambda p: (-fused[p], p))
    out = []
    for pid in order if limit is None else order[:limit]:
        # A paper found by paper BM25 alone is shown by its first chunk (ids are paper:n, assistant.models.Chunk.id).
        chunks = dict.fromkeys(c for c, _ in d_best.get(pid, []) + l_best.get(pid, [])) or {f"{pid}:0": None}
        out.append(Fused(pid, fused[pid], d_score.get(pid, math.nan), l_score.get(pid, 0.0), tuple(chunks)))
    return out


def _hit(paper: Fused, passages: Sequence[Passage]) -> PaperHit:
    first = passages[0]
    return PaperHit(
        paper_id=paper.paper_id,
        title=first.title,
        score=paper.score,
        dense=paper.dense,
        lexical=paper.lexical,
        passages=tuple(passages),
        metadata=first.metadata,
    )


def fuse(
    dense: Sequence[tuple[Passage, float]],
    lexical: Sequence[tuple[Passage, float]],
    params: FusionParams,
    papers: Sequence[tuple[str, float]] = (),
) -> list[PaperHit]:
    """Aggregate chunk hits to papers (best chunk decides) and fuse the rankings; `papers` (paper-level BM25) counts
    only for papers with a chunk among the hits, the ones that passed the caller's filters."""
    by_id = {p.chunk_id: p for p, _ in [*dense, *lexical]}
    shown = {p.paper_id for p in by_id.values()}
    ranked = fuse_ranked(
        [(p.chunk_id, p.paper_id, s) for p, s in dense],
        [(p.chunk_id, p.paper_id, s) for p, s in lexical],
        params,
        papers=[(pid, s) for pid, s in papers if pid in shown],
    )
    return [_hit(f, [by_id[c] for c in f.chunk_ids[: params.chunks_per_paper] if c in by_id]) for f in ranked]


def _paper_of(chunk_id: str) -> str:
    return chunk_id.rsplit(":", 1)[0]


class Retriever:
    """Dense + BM25 search over one store, returning papers best first."""

    def __init__(self, store: ChunkStore, embedder: Embedder, lexical: LexicalCache, params: FusionParams | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.lexical = lexical
        self.params = params or FusionParams()

    def dense(
        self, query: str, n: int, filters: Filters | None = None, vector: Sequence[float] | None = None
    ) -> list[tuple[Passage, float]]:
        """Nearest chunks by cosine similarity."""
        vector = vector if vector is not None else self.embedder.embed_query(query)
        where = None
        if filters and (filters.year_min is not None or filters.year_max is not None):
            clauses: list[dict[str, object]] = []
            if filters.year_min is not None:
                clauses.append({"year": {"$gte": filters.year_min}})
            if filters.year_max is not None:
                clauses.append({"year": {"$lte": filters.year_max}})
            where = clauses[0] if len(clauses) == 1 else {"$and": clauses}
        # Post-filters (author, category, title) need a deeper candidate pool.
        depth = n * 4 if filters and filters.active() else n
        rows = self.store.query(vector, depth, where)
        if filters and filters.active():
            rows = [p for p in rows if filters.match(p.metadata)]
        return [(p, p.score) for p in rows[:n]]

    def bm25(self, query: str, n: int, filters: Filters | None = None) -> list[tuple[Passage, float]]:
        """Best chunks by BM25, with their stored metadata."""
        index = self.lexical.get()
        ranked = index.search(query, n * 4 if filters and filters.active() else n)
        if not ranked:
            return []
        scores = dict(ranked)
        passages = self.store.get([cid for cid, _ in ranked])  # chunks deleted since indexing drop out here
        rows = [(p, scores[p.chunk_id]) for p in passages if not filters or filters.match(p.metadata)]
        return rows[:n]

    def lexical_papers(self, query: str, k: int, filters: Filters | None = None) -> list[PaperHit]:
        """The k best papers by chunk BM25 alone (from its top 4k chunks): papers holding a rare term such as a name,
        which fusion with dense scores can outvote (a bare name's embedding says little)."""
        return fuse([], self.bm25(query, 4 * k, filters), self.params)[:k]

    def _dense_ranked(self, vector: Sequence[float], n: int) -> list[tuple[str, str, float]]:
        """Nearest chunk ids and cosine similarities only: fetching 100 chunks' metadata costs more than the search."""
        return [(cid, _paper_of(cid), sim) for cid, sim in self.store.nearest(vector, n)]

    def papers_bm25(self, query: str, n: int) -> list[tuple[str, float]]:
        """Best (paper id, score) pairs by BM25 over whole papers; none when fusion gives them no weight."""
        return search_papers(self.lexical.get(), query, n) if self.params.paper_share > 0 else []

    def _records(self, ids: list[str]) -> dict[str, Passage]:
        """The chunks' records from the lexical index when it is at the store's revision (no round trip to the store;
        LexicalCache says how soon another process's write is noticed), from the store otherwise and for any it lacks."""
        index = self.lexical.current_index()
        found = index.passages(ids) if index is not None else {}
        missing = [c for c in ids if c not in found]
        if missing:
            found.update((p.chunk_id, p) for p in self.store.get(missing))
        return found

    @staticmethod
    def _bm25_ranked(found: Sequence[tuple[str, float]]) -> list[tuple[str, str, float]]:
        return [(cid, _paper_of(cid), score) for cid, score in found]

    def search(
        self, query: str, k: int = 5, filters: Filters | None = None, vector: Sequence[float] | None = None
    ) -> list[PaperHit]:
        """The k best papers for the query (`vector`: its embedding, when the caller already has it)."""
        n = self.params.candidates
        if filters and filters.active():
            # Metadata filters need every candidate's stored metadata, so they take the full path.
            dense_hits, bm25_hits = self.dense(query, n, filters, vector), self.bm25(query, n, filters)
            return fuse(dense_hits, bm25_hits, self.params, self.papers_bm25(query, 4 * n))[:k]
        # Both BM25 searches run on a search thread while this one embeds the query and waits on the store.
        pending = self.lexical.soon(lambda index: (index.search(query, n), self.papers_bm25(query, n)))
        vector = self.embedder.embed_query(query) if vector is None else vector
        dense = self._dense_ranked(vector, n)
        found, papers = pending.result()
        lexical = self._bm25_ranked(found)
        limit: int | None = 2 * k  # building every candidate's record costs more than fusing the scores
        ranked = fuse_ranked(dense, lexical, self.params, limit, papers)
        # Only the papers returned get their chunks' records; a chunk deleted since indexing drops its paper, the next moves up.
        per = self.params.chunks_per_paper
        hits: list[PaperHit] = []
        at = 0
        while len(hits) < k:
            if at >= len(ranked):
                if limit is None or len(ranked) < limit:
                    break
                limit, ranked = None, fuse_ranked(dense, lexical, self.params, None, papers)  # more deleted chunks than spares
                continue
            batch = ranked[at : at + k - len(hits)]
            at += len(batch)
            fetched = self._records([c for f in batch for c in f.chunk_ids[:per]])
            for f in batch:
                passages = [fetched[c] for c in f.chunk_ids[:per] if c in fetched]
                if passages:
                    hits.append(_hit(f, passages))
        return hits
