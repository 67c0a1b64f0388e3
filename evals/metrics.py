"""Pure evaluation metrics: ranking quality on qrels, and citation, refusal and answer-point scores."""

from __future__ import annotations

import math
import re
import statistics
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

# An answer point counts as stated when this share of its content words (stemmed) appear in the answer.
POINT_MATCH = 0.6


def ndcg_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with linear gains (trec_eval / BEIR convention); 0 when nothing is relevant."""
    gains = sorted((g for g in relevance.values() if g > 0), reverse=True)
    if not gains:
        return 0.0
    dcg = sum(relevance.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k]))
    return dcg / ideal


def recall_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """Share of the relevant items found in the first k; 0 when nothing is relevant."""
    wanted = set(relevant)
    if not wanted:
        return 0.0
    return len(wanted & set(ranked[:k])) / len(wanted)


def mrr_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int = 10) -> float:
    """Reciprocal rank of the first relevant item within the first k, else 0."""
    wanted = set(relevant)
    for i, doc in enumerate(ranked[:k]):
        if doc in wanted:
            return 1.0 / (i + 1)
    return 0.0


def retrieval_scores(ranked: Sequence[str], relevance: Mapping[str, int]) -> dict[str, float]:
    """The four reported figures for one query."""
    relevant = [d for d, g in relevance.items() if g > 0]
    return {
        "ndcg@10": ndcg_at_k(ranked, relevance, 10),
        "recall@10": recall_at_k(ranked, relevant, 10),
        "recall@100": recall_at_k(ranked, relevant, 100),
        "mrr@10": mrr_at_k(ranked, relevant, 10),
    }


def mean_scores(rows: Sequence[Mapping[str, float | None]]) -> dict[str, float | None]:
    """Per-key mean over rows, skipping None (a metric that does not apply to a row)."""
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    out: dict[str, float | None] = {}
    for key in keys:
        values = [float(v) for row in rows if (v := row.get(key)) is not None]
        out[key] = statistics.fmean(values) if values else None
    return out


# -- answers --------------------------------------------------------------------------------------


def norm_title(title: str) -> str:
    """Titles compared case- and space-insensitively, so loader normalisation does not count as a miss."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", title)).strip().casefold()


def title_set(titles: Iterable[str]) -> set[str]:
    """Normalised titles."""
    return {norm_title(t) for t in titles}


def title_recall(found: Sequence[str], gold: Iterable[str], k: int | None = None) -> float | None:
    """Share of gold titles among the found ones (the first k when given); None without gold."""
    wanted = title_set(gold)
    if not wanted:
        return None
    got = title_set(found[:k] if k is not None else found)
    return len(wanted & got) / len(wanted)


def citation_precision(cited: Iterable[str], gold: Iterable[str], acceptable: Iterable[str]) -> float | None:
    """Share of cited papers that are gold or acceptable; None when nothing is cited."""
    got = title_set(cited)
    if not got:
        return None
    return len(got & (title_set(gold) | title_set(acceptable))) / len(got)


def _stems(text: str) -> set[str]:
    from assistant.text.words import stems

    return stems(text)


def point_coverage(point: str, answer: str) -> float:
    """Share of the point's stemmed content words (numbers included) present in the answer."""
    wanted = _stems(point)
    if not wanted:
        return 1.0
    return len(wanted & _stems(answer)) / len(wanted)


def answer_points(points: Sequence[str], answer: str, threshold: float = POINT_MATCH) -> float | None:
    """Share of answer points stated (coverage ≥ threshold); None when there are none."""
    if not points:
        return None
    return sum(1 for p in points if point_coverage(p, answer) >= threshold) / len(points)
