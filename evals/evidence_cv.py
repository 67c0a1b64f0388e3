"""Cross-validation of the evidence scorer: sentence-level AUC and calibration, fitted bars, answer-level figures.

Folds are grouped by question (every sentence of a question sits in one fold). The bars of each fold are fitted on
out-of-fold probabilities of its training folds (an inner cross-validation), never on the fold they are reported on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from assistant.answering.scorer import EvidenceModel, fit_logistic

if TYPE_CHECKING:
    from evals.fit_evidence import Table

MAX_FALSE_REFUSALS = 0.08  # refusal bar: refuse as many NEI claims as possible, at most this share of evidence claims
# A claim check's own bar: the product allows 10% of claims with evidence refused; one point is left for held-out noise.
CLAIM_MAX_FALSE_REFUSALS = 0.09
MIN_RECALL_SHARE = 0.97  # cite bar: keep doc recall at least this share of what citing every answered paper gives
CITE_RATIOS = tuple(round(0.1 * i, 1) for i in range(10))  # shares of the best paper's probability tried
QUOTES = 3  # sentences quoted per cited paper
SOURCES = ("scifact", "extra", "cross", "cross-cs")  # question sources, in the order evals.fit_evidence stacks them


@dataclass(frozen=True)
class Groups:
    """Row indices of each question's papers, built once per table."""

    rows: list[list[np.ndarray]]  # question -> paper rank -> row indices (abstract order)


def groups_of(table: Table) -> Groups:
    n = len(table.answerable)
    rows: list[list[np.ndarray]] = [[] for _ in range(n)]
    order = np.lexsort((table.paper, table.question))
    bounds = np.flatnonzero(np.diff(table.question[order] * 1000 + table.paper[order])) + 1
    for chunk in np.split(order, bounds):
        if len(chunk):
            rows[int(table.question[chunk[0]])].append(chunk)
    return Groups(rows)


def assign_folds(table: Table, k: int, seed: int) -> np.ndarray:
    """A fold per question, balanced over (source, answerable) strata."""
    rng = np.random.default_rng(seed)
    folds = np.zeros(len(table.answerable), dtype=int)
    strata = table.source * 2 + table.answerable.astype(int)
    for s in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == s))
        folds[members] = np.arange(len(members)) % k
    return folds


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Probability that a positive outscores a negative (ties count half)."""
    pos, neg = int(labels.sum()), int(len(labels) - labels.sum())
    if not pos or not neg:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return float((ranks[labels == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def calibration(p: np.ndarray, y: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Expected calibration error and a reliability table over equal-width probability bins."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        m = which == b
        if not m.any():
            continue
        mean_p, rate = float(p[m].mean()), float(y[m].mean())
        ece += m.sum() / len(p) * abs(mean_p - rate)
        table.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "n": int(m.sum()), "predicted": round(mean_p, 4),
                      "observed": round(rate, 4)})  # fmt: skip
    return {"ece": round(ece, 4), "reliability": table}


def _paper_max(groups: Groups, probs: np.ndarray, q: int) -> np.ndarray:
    return np.asarray([probs[r].max() for r in groups.rows[q]])


@dataclass(frozen=True)
class Bars:
    """An answer rule: the refusal and cite bars, and for claim checks the claim model's probability per question."""

    refusal: float
    cite: float
    settled: Mapping[int, float] | None = None
    ratio: float = 0.0  # a cited paper's best sentence also reaches this share of the best paper's


def answers(table: Table, groups: Groups, probs: np.ndarray, questions: Sequence[int], bars: Bars) -> dict[str, Any]:
    """Answer-level figures as `eval claims` defines them, for the given questions under the given bars.

    An answer is refused when no sentence reaches the refusal bar (with `settled`, a claim check's probability that
    its evidence settles it, when that falls below the bar); otherwise it cites every paper whose best sentence
    reaches the cite bar and `ratio` of the best paper's (the best paper at least), and quotes the top QUOTES
    sentences of each.
    """
    refusal_bar, cite_bar, settled, ratio = bars.refusal, bars.cite, bars.settled, bars.ratio
    ev: dict[str, Any] = {"n": 0, "refused": 0, "doc": 0, "rationale": 0, "precision": [], "cited": 0}
    nei = {"n": 0, "refused": 0}
    for q in questions:
        best = _paper_max(groups, probs, q)
        refused = len(best) == 0 or (best.max() if settled is None else settled[q]) < refusal_bar
        if not table.answerable[q]:
            nei["n"] += 1
            nei["refused"] += int(refused)
            continue
        ev["n"] += 1
        if refused:
            ev["refused"] += 1
            continue
        cited = [int(r) for r in np.flatnonzero(best >= max(cite_bar, ratio * best.max()))] or [int(best.argmax())]
        ev["cited"] += len(cited)
        good = [r for r in cited if r in table.good[q]]
        ev["doc"] += int(bool(good))
        quoted = [groups.rows[q][r][np.argsort(-probs[groups.rows[q][r]])[:QUOTES]] for r in good]
        ev["rationale"] += int(any(table.y[rows].any() for rows in quoted))
        ev["precision"].append(len([r for r in cited if r in table.fine[q]]) / len(cited))
    n = max(ev["n"], 1)
    return {
        "evidence_questions": ev["n"],
        "false_refusals": round(ev["refused"] / n, 4),
        "doc_recall": round(ev["doc"] / n, 4),
        "rationale_hit": round(ev["rationale"] / n, 4),
        "citation_precision": round(float(np.mean(ev["precision"])), 4) if ev["precision"] else None,
        "cited_per_answer": round(ev["cited"] / len(ev["precision"]), 3) if ev["precision"] else None,
        "nei_questions": nei["n"],
        "nei_refusal_rate": round(nei["refused"] / nei["n"], 4) if nei["n"] else None,
    }


def _refusal_bar(table: Table, groups: Groups, probs: np.ndarray, questions: Sequence[int]) -> float:
    """The highest bar that refuses at most MAX_FALSE_REFUSALS of these evidence questions."""
    evidence_best = np.sort([probs[np.concatenate(groups.rows[q])].max() for q in questions if table.answerable[q]])
    allowed = int(np.floor(MAX_FALSE_REFUSALS * len(evidence_best)))
    return float(evidence_best[allowed]) if len(evidence_best) else 0.5


def fit_bars(
    table: Table, groups: Groups, probs: np.ndarray, questions: Sequence[int], settled: Mapping[int, float] | None = None
) -> tuple[float, float, float]:
    """Refusal bar: the highest that refuses at most MAX_FALSE_REFUSALS of the evidence questions of each source
    (SciFact claims, our labelled questions), so the limit holds in the product's domain and not only on average;
    with `settled`, the bar on those claim-check probabilities instead of the best sentence's.
    Cite bar (and, for claim checks, cite ratio): the highest citation precision whose doc recall stays at least
    MIN_RECALL_SHARE of the doc recall reached by citing every answered paper above the refusal bar. Questions keep
    ratio 0: a summary or comparison cites every paper that answers, however far below the best.
    """
    by_source = [[q for q in questions if table.source[q] == s and table.answerable[q]] for s in np.unique(table.source)]
    if settled is None:
        refusal = min((_refusal_bar(table, groups, probs, qs) for qs in by_source if qs), default=0.5)
    else:
        scores = np.sort([settled[q] for q in questions if table.answerable[q]])
        refusal = float(scores[int(np.floor(CLAIM_MAX_FALSE_REFUSALS * len(scores)))]) if len(scores) else 0.5
    floor = 0.0 if settled is not None else refusal  # a claim check cites on sentence probabilities from zero up
    base = answers(table, groups, probs, questions, Bars(refusal, floor, settled))
    candidates = np.unique(np.quantile(probs[np.isfinite(probs)], np.linspace(0.5, 1.0, 201)))
    ratios = CITE_RATIOS if settled is not None else (0.0,)
    best_rule, best_precision = (floor, 0.0), base["citation_precision"] or 0.0
    for bar, ratio in ((float(b), r) for r in ratios for b in [floor, *candidates[candidates > floor]]):
        got = answers(table, groups, probs, questions, Bars(refusal, bar, settled, ratio))
        if got["doc_recall"] < MIN_RECALL_SHARE * base["doc_recall"]:
            continue
        if (got["citation_precision"] or 0.0) > best_precision:
            best_rule, best_precision = (bar, ratio), got["citation_precision"] or 0.0
    return refusal, *best_rule


def _fit(table: Table, rows: np.ndarray, l2: float, weight: np.ndarray) -> EvidenceModel:
    return fit_logistic(table.x[rows], table.y[rows], l2, weight[rows])


def out_of_fold(table: Table, questions: np.ndarray, folds: np.ndarray, l2: float, weight: np.ndarray) -> np.ndarray:
    """Held-out probabilities for every row of the given questions, each from a model fitted without its fold."""
    probs = np.full(len(table.y), np.nan)
    in_set = np.isin(table.question, questions)
    for f in np.unique(folds[questions]):
        held = in_set & (folds[table.question] == f)
        train = in_set & ~held
        probs[held] = _fit(table, np.flatnonzero(train), l2, weight).probability(table.x[held])
    return probs


def row_weights(table: Table, extra_weight: float) -> np.ndarray:
    return np.where(table.source[table.question] == 0, 1.0, extra_weight)


def cross_validate(table: Table, k: int, l2: float, seed: int, extra_weight: float = 1.0) -> tuple[dict[str, Any], np.ndarray]:
    """The held-out report and the out-of-fold probability of every row."""
    groups = groups_of(table)
    folds = assign_folds(table, k, seed)
    weight = row_weights(table, extra_weight)
    everything = np.arange(len(table.answerable))
    oof = out_of_fold(table, everything, folds, l2, weight)
    per_fold = []
    for f in range(k):
        train_q, test_q = everything[folds != f], everything[folds == f]
        inner = out_of_fold(table, train_q, assign_folds(table, k - 1, seed + 1 + f), l2, weight)
        bars = fit_bars(table, groups, inner, [int(q) for q in train_q])
        row: dict[str, Any] = {"fold": f, "refusal_bar": round(bars[0], 4), "cite_bar": round(bars[1], 4)}
        for s, name in enumerate(SOURCES):
            qs = [int(q) for q in test_q if table.source[q] == s]
            if qs:
                row[name] = answers(table, groups, oof, qs, Bars(bars[0], bars[1]))
        held = np.isin(table.question, test_q)
        row["auc"] = auc(oof[held], table.y[held])
        per_fold.append(row)
    report: dict[str, Any] = {"folds": k, "l2": l2, "extra_weight": extra_weight, "per_fold": per_fold, "mean": _means(per_fold)}
    report["sentence_auc"] = auc(oof, table.y)
    report["calibration"] = calibration(oof, table.y)
    report["question_auc"] = _question_auc(table, groups, oof)
    return report, oof


def _question_auc(table: Table, groups: Groups, probs: np.ndarray) -> float | None:
    """How well the best sentence score separates evidence claims from NEI claims (SciFact only)."""
    qs = [q for q in range(len(table.answerable)) if table.source[q] == 0 and groups.rows[q]]
    best = np.asarray([probs[np.concatenate(groups.rows[q])].max() for q in qs])
    return auc(best, table.answerable[qs].astype(int))


def _means(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("refusal_bar", "cite_bar", "auc"):
        out[key] = round(float(np.mean([r[key] for r in rows if r.get(key) is not None])), 4)
    for src in SOURCES:
        parts = [r[src] for r in rows if src in r]
        if parts:
            out[src] = {m: round(float(np.mean([p[m] for p in parts if p[m] is not None])), 4)
                        for m in parts[0] if any(p[m] is not None for p in parts)}  # fmt: skip
    return out


def final_fit(table: Table, l2: float, oof: np.ndarray, extra_weight: float = 1.0) -> EvidenceModel:
    """The model fitted on every row, with bars fitted on the out-of-fold probabilities of the SciFact claims."""
    weight = row_weights(table, extra_weight)
    model = _fit(table, np.arange(len(table.y)), l2, weight)
    groups = groups_of(table)
    bars = fit_bars(table, groups, oof, list(range(len(table.answerable))))
    return replace(model, refusal_bar=bars[0], cite_bar=bars[1], piece_bar=table.piece_bar)
