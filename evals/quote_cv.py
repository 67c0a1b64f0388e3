"""The quote ranker (`assistant.answering.quotes`), fitted by `python -m evals.quote_cv` with the arguments of
`python -m evals.fit_evidence` (the same labelled sentences): which sentences of an answering abstract to quote, fitted and
cross-validated on the abstracts whose answering sentences are labelled.

The evidence scorer is fitted across every sentence of every retrieved paper, so it mostly learns which papers answer;
the ranker is a conditional logit (a softmax over one abstract's sentences) on the same features, so it learns only
which sentence of an abstract answers. Features constant within an abstract get no weight. Its figures: how often the
first quoted sentence, and any of the first three, is a gold one, against ordering by the scorer's probability.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from assistant.answering.quotes import QUOTES_KEY
from assistant.answering.scorer import FEATURES, EvidenceModel
from evals.claim_cv import Options
from evals.evidence_cv import Groups, assign_folds, groups_of, out_of_fold, row_weights

if TYPE_CHECKING:
    from evals.fit_evidence import Table

SOURCES = ("scifact", "extra")  # sources with labelled answering sentences (claims, our questions), in table order


def labelled_abstracts(table: Table, groups: Groups, questions: Sequence[int]) -> list[np.ndarray]:
    """Row indices of each retrieved abstract with both answering and other sentences, for these questions."""
    return [rows for q in questions for rows in groups.rows[q] if table.y[rows].any() and not table.y[rows].all()]


def fit_on(table: Table, groups: Groups, questions: Sequence[int], l2: float, extra_weight: float) -> EvidenceModel:
    """The ranker on these questions' labelled abstracts, ours weighted `extra_weight` as in the evidence scorer's
    fit (unweighted, SciFact's 518 abstracts teach the biomedical habit of answering late in the abstract, and on
    our questions the first sentence was a gold one less often than the scorer's: 0.44 against 0.51)."""
    abstracts = labelled_abstracts(table, groups, questions)
    weight = np.where(table.source[table.question[[int(a[0]) for a in abstracts]]] == 0, 1.0, extra_weight)
    return fit_ranker(table.x, table.y, abstracts, l2, weight)


def _loss(w: np.ndarray, z: Sequence[np.ndarray], target: Sequence[np.ndarray], weight: np.ndarray, l2: float) -> float:
    total = 0.5 * l2 * float(w @ w)
    for zi, ti, a in zip(z, target, weight, strict=True):
        s = zi @ w
        top = s.max()
        total -= a * float(ti @ (s - top - np.log(np.exp(s - top).sum())))
    return total


def fit_ranker(
    x: np.ndarray, y: np.ndarray, abstracts: Sequence[np.ndarray], l2: float = 1.0, weight: np.ndarray | None = None
) -> EvidenceModel:
    """Conditional logit by damped Newton on standardised features: each abstract's softmax over its sentences puts
    its mass on the gold ones (shared equally), abstracts weighted by `weight`. Stored as an EvidenceModel whose
    probability orders sentences."""
    weight = np.ones(len(abstracts)) if weight is None else np.asarray(weight, dtype=np.float64)
    rows = np.concatenate(abstracts)
    mean, scale = x[rows].mean(axis=0), x[rows].std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = [(x[r] - mean) / scale for r in abstracts]
    target = [y[r] / y[r].sum() for r in abstracts]
    w = np.zeros(x.shape[1])
    loss = _loss(w, z, target, weight, l2)
    for _ in range(100):
        grad, hess = l2 * w, l2 * np.eye(len(w))
        for zi, ti, a in zip(z, target, weight, strict=True):
            s = zi @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            grad = grad + a * (zi.T @ (p - ti))
            hess = hess + a * (zi.T @ (zi * p[:, None]) - np.outer(zi.T @ p, zi.T @ p))
        step = np.linalg.solve(hess, grad)
        # Halve the step until the loss falls: a rare feature (a sentence defining the asked term) is far out once
        # standardised, and a full Newton step on it overshoots.
        while (new := _loss(w - step, z, target, weight, l2)) > loss and float(np.abs(step).max()) > 1e-10:
            step /= 2
        w, loss = w - step, min(new, loss)
        if float(np.abs(step).max()) < 1e-8:
            break
    return EvidenceModel(tuple(FEATURES), mean, scale, w, 0.0)


def _hits(order: np.ndarray, y: np.ndarray) -> tuple[bool, bool]:
    return bool(y[order[0]]), bool(y[order[:3]].any())


def cross_validate_ranker(table: Table, oof: np.ndarray, options: Options) -> dict[str, Any]:
    """Held-out top-1 and top-3 hits on the answering abstracts of SciFact's claims and of our questions: the ranker
    fitted without the fold, against the scorer's out-of-fold probabilities."""
    groups = groups_of(table)
    folds, l2, extra_weight = options.folds, options.l2, options.extra_weight
    fold = assign_folds(table, folds, options.seed)
    everything = np.arange(len(table.answerable))
    counts = {src: dict.fromkeys(("abstracts", "scorer_top1", "scorer_top3", "ranker_top1", "ranker_top3"), 0)
              for src in SOURCES}  # fmt: skip
    for f in range(folds):
        ranker = fit_on(table, groups, [int(q) for q in everything[fold != f]], l2, extra_weight)
        for src, tag in enumerate(SOURCES):
            held = [int(q) for q in everything[fold == f] if table.source[q] == src]
            for rows in labelled_abstracts(table, groups, held):
                y = table.y[rows]
                for name, score in (("scorer", oof[rows]), ("ranker", ranker.probability(table.x[rows]))):
                    top1, top3 = _hits(np.argsort(-score, kind="stable"), y)
                    counts[tag][f"{name}_top1"] += top1
                    counts[tag][f"{name}_top3"] += top3
                counts[tag]["abstracts"] += 1
    return {"folds": folds, **{tag: {k: v if k == "abstracts" else round(v / max(c["abstracts"], 1), 4)
                                     for k, v in c.items()} for tag, c in counts.items()}}  # fmt: skip


def final_ranker(table: Table, l2: float, extra_weight: float) -> EvidenceModel:
    """The shipped ranker: every labelled abstract."""
    return fit_on(table, groups_of(table), range(len(table.answerable)), l2, extra_weight)


def main(argv: Sequence[str] | None = None) -> int:
    from assistant.config import Settings
    from assistant.runtime import prepare_runtime
    from evals.fit_evidence import add_arguments, committed_piece_bar, feature_table

    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m evals.quote_cv", description=(__doc__ or "").splitlines()[0])
    add_arguments(p)
    args = p.parse_args(argv)
    prepare_runtime(Settings())
    table, _ = feature_table(args, committed_piece_bar(args))
    folds = assign_folds(table, args.folds, args.seed)
    oof = out_of_fold(table, np.arange(len(table.answerable)), folds, args.l2, row_weights(table, args.extra_weight))
    report: dict[str, Any] = {"cv": cross_validate_ranker(table, oof, Options(args.l2, args.folds, args.seed, args.extra_weight))}
    ranker = final_ranker(table, args.l2, args.extra_weight)
    report["weights"] = dict(zip(FEATURES, (round(float(w), 4) for w in ranker.weights), strict=True))
    report["command"] = "python -m evals.quote_cv " + " ".join(argv)
    if not args.dry_run:
        params = json.loads(args.out.read_text(encoding="utf-8"))  # the evidence scorer's file: the ranker joins it
        params[QUOTES_KEY] = {**ranker.to_dict(), "cv": report["cv"], "command": report["command"],
                              "date": dt.date.today().isoformat()}  # fmt: skip
        args.out.write_text(json.dumps(params, indent=1) + "\n", encoding="utf-8")
        report["written"] = str(args.out)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
