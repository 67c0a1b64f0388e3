"""The claim-check model (`assistant.answering.answerability`): fitted on SciFact claims, cross-validated.

Its inputs are aggregates of the evidence scorer's out-of-fold sentence probabilities, so it is stacked on the scorer
without seeing a probability fitted on its own question. Per fold: the scorer's inner out-of-fold probabilities of the
training claims fit the claim model and, through an inner cross-validation of the claim model, its bars; the held-out
claims are scored from the scorer's out-of-fold probabilities and reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from assistant.answering.answerability import QUESTION_FEATURES, question_features
from assistant.answering.scorer import EvidenceModel, fit_logistic
from evals.evidence_cv import (
    SOURCES,
    Bars,
    Groups,
    answers,
    assign_folds,
    auc,
    fit_bars,
    groups_of,
    out_of_fold,
    row_weights,
)

if TYPE_CHECKING:
    from evals.fit_evidence import Table

CLAIMS = SOURCES.index("scifact")  # what the claim model is fitted on; the off-domain claims ("cross") are only checked
INNER = 5  # folds of the claim model's own inner cross-validation, for its bars


def features(table: Table, groups: Groups, probs: np.ndarray, questions: Sequence[int]) -> np.ndarray:
    """QUESTION_FEATURES of each question, from these sentence probabilities."""
    out = []
    for q in questions:
        rows = np.concatenate(groups.rows[q]) if groups.rows[q] else np.zeros(0, dtype=int)
        paper = np.concatenate([np.full(len(r), i) for i, r in enumerate(groups.rows[q])]) if groups.rows[q] else rows
        out.append(question_features(table.x[rows], probs[rows], paper))
    return np.asarray(out).reshape(len(out), len(QUESTION_FEATURES))


def _claims(table: Table, questions: Sequence[int]) -> list[int]:
    return [int(q) for q in questions if table.source[q] == CLAIMS]


@dataclass(frozen=True)
class Options:
    """How the claim models are fitted: the scorer's L2 penalty, folds and extra weight, and the seed."""

    l2: float = 1.0
    folds: int = 5
    seed: int = 0
    extra_weight: float = 1.0


def fit_claim_model(table: Table, probs: np.ndarray, questions: Sequence[int], options: Options, seed: int) -> EvidenceModel:
    """The claim model on these claims' features, with bars fitted on its own out-of-fold scores."""
    groups, l2 = groups_of(table), options.l2
    claims = _claims(table, questions)
    x, y = features(table, groups, probs, claims), table.answerable[claims].astype(float)
    folds = np.random.default_rng(seed).permutation(len(claims)) % INNER
    scores = np.zeros(len(claims))
    for f in range(INNER):
        held = folds == f
        scores[held] = fit_logistic(x[~held], y[~held], l2, features=QUESTION_FEATURES).probability(x[held])
    settled = dict(zip(claims, scores, strict=True))
    bars = fit_bars(table, groups, probs, claims, settled)
    model = fit_logistic(x, y, l2, features=QUESTION_FEATURES)
    return replace(model, refusal_bar=bars[0], cite_bar=bars[1], cite_ratio=bars[2])


def settle(model: EvidenceModel, table: Table, groups: Groups, probs: np.ndarray, questions: Sequence[int]) -> dict[int, float]:
    """The model's probability that each question's evidence settles it."""
    if not questions:
        return {}
    return dict(zip(questions, model.probability(features(table, groups, probs, questions)), strict=True))


def fold_claim_models(table: Table, options: Options) -> list[EvidenceModel]:
    """One claim model per fold of `assign_folds(table, folds, seed)`, fitted without that fold."""
    weight, k, seed = row_weights(table, options.extra_weight), options.folds, options.seed
    folds = assign_folds(table, k, seed)
    everything = np.arange(len(table.answerable))
    models = []
    for f in range(k):
        train_q = everything[folds != f]
        inner = out_of_fold(table, train_q, assign_folds(table, k - 1, seed + 1 + f), options.l2, weight)
        models.append(fit_claim_model(table, inner, [int(q) for q in train_q], options, seed + f))
    return models


def cross_validate_claims(table: Table, oof: np.ndarray, options: Options) -> dict[str, Any]:
    """Held-out answer-level figures of claim checks under the claim model, fold by fold, and their means."""
    groups = groups_of(table)
    folds = assign_folds(table, options.folds, options.seed)
    per_fold = []
    for f, model in enumerate(fold_claim_models(table, options)):
        row: dict[str, Any] = {"fold": f, "refusal_bar": round(model.refusal_bar, 4), "cite_bar": round(model.cite_bar, 4),
                               "cite_ratio": model.cite_ratio}  # fmt: skip
        for s, name in enumerate(SOURCES):
            qs = [int(q) for q in np.flatnonzero(folds == f) if table.source[q] == s and groups.rows[q]]
            if qs and name in ("scifact", "cross"):
                rule = Bars(model.refusal_bar, model.cite_bar, settle(model, table, groups, oof, qs), model.cite_ratio)
                row[name] = answers(table, groups, oof, qs, rule)
        held = [int(q) for q in np.flatnonzero(folds == f) if table.source[q] == CLAIMS]
        scores = settle(model, table, groups, oof, held)
        row["auc"] = auc(np.asarray([scores[q] for q in held]), table.answerable[held].astype(int))
        per_fold.append(row)
    return {"folds": options.folds, "features": list(QUESTION_FEATURES), "per_fold": per_fold, "mean": _means(per_fold)}


def _means(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    keys = ("refusal_bar", "cite_bar", "cite_ratio", "auc")
    out: dict[str, Any] = {key: round(float(np.mean([r[key] for r in rows])), 4) for key in keys}
    for src in ("scifact", "cross"):
        parts = [r[src] for r in rows if src in r]
        out[src] = {m: round(float(np.mean([p[m] for p in parts if p[m] is not None])), 4)
                    for m in parts[0] if any(p[m] is not None for p in parts)}  # fmt: skip
    return out


def final_claim_model(table: Table, oof: np.ndarray, options: Options) -> EvidenceModel:
    """The shipped claim model: every SciFact claim's features from the scorer's out-of-fold probabilities."""
    return fit_claim_model(table, oof, list(range(len(table.answerable))), options, options.seed)
