"""Fit the lookup model (does the closest abstract state what a question asks for?) and report it cross-validated.

`python -m evals.fit_lookups evals/data/sample_questions.jsonl evals/data/sample_paraphrased.jsonl
evals/data/sample_specifics.jsonl evals/data/sample_specifics2.jsonl --share-from evals/data/sample_questions.jsonl
evals/data/sample_paraphrased.jsonl [--check ../shared/eval/questions.jsonl] [--write]`

Each lookup and unanswerable question without history that asks for a number or a name (the questions the planner
gives this model) is planned as a direct answer over the configured collection (the bundled sample for these files);
its features are read from the retrieved papers' evidence. The other questions keep the evidence bar alone; `overall`
reports all of them together. Reported over
5 x 5-fold cross-validation (model and bar fitted on four folds, scored on the fifth): the share of answerable
questions the model refuses and of unanswerable ones it refuses, alone and together with the evidence model's own
refusal bar, beside that bar alone. `--check` files are scored once with the final model, never fitted on.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant import build_assistant
from assistant.answering.asking import asks_specific
from assistant.answering.lookups import LOOKUP_FEATURES, LOOKUP_PARAMS_PATH, lookup_features
from assistant.answering.relevance import refusal_reason
from assistant.answering.scorer import EvidenceModel, fit_logistic
from assistant.config import load_settings
from assistant.runtime import prepare_runtime
from evals.fit_args import fit_parser

# The planner refuses a direct answer when either the evidence bar or this model does, so the bar is chosen on both
# together: the one that makes the fewest expected mistakes (an answerable question refused, an unanswerable one
# answered) when questions are unanswerable as often as in the `--share-from` files (our question sets, written with
# the mix of kinds users ask; the near-miss set is balanced by design, so it does not count).
L2 = 1.0
FOLDS, REPEATS = 5, 5


@dataclass(frozen=True)
class Rows:
    """One row per question: its features, whether it is answerable, whether the evidence bar alone refuses it, and
    whether it asks for a number or a name (the questions the model judges)."""

    x: np.ndarray
    answerable: np.ndarray
    bar_refuses: np.ndarray
    specific: np.ndarray

    def only(self, keep: np.ndarray) -> Rows:
        return Rows(self.x[keep], self.answerable[keep], self.bar_refuses[keep], self.specific[keep])


def collect(paths: Sequence[Path]) -> Rows:
    """Plan every lookup and unanswerable question (no history) as a direct answer and read its features."""
    settings = load_settings()
    prepare_runtime(settings)
    assistant = build_assistant(settings)
    xs, ys, refused, specific = [], [], [], []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            q = json.loads(line) if line.strip() else None
            if not q or q.get("type") not in ("lookup", "unanswerable") or q.get("history"):
                continue
            plan = assistant.plan(q["question"], mode="ask")
            xs.append(lookup_features(plan.standalone, plan.evidence, assistant.evidence.term_stats()))
            ys.append(q["type"] == "lookup")
            refused.append(bool(refusal_reason(plan.evidence, (), assistant.evidence.model.refusal_bar)))
            specific.append(asks_specific(q["question"]))
    return Rows(np.asarray(xs), np.asarray(ys, dtype=bool), np.asarray(refused, dtype=bool), np.asarray(specific, dtype=bool))


def unanswerable_share(paths: Sequence[Path]) -> float:
    """The share of unanswerable questions among all questions of the files."""
    lines = [line for path in paths for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    types = [json.loads(line).get("type") for line in lines]
    return sum(t == "unanswerable" for t in types) / max(1, len(types))


def plateau_middle(bars: np.ndarray, cost: np.ndarray) -> float:
    """The middle of the run of lowest-cost bars. A bar refuses the questions whose probability is below it, so every
    bar in (bars[first - 1], bars[last]] refuses the same training questions; its middle keeps the furthest from the
    two training probabilities that bound it, where a bar on one of them would flip a new question a hair below it."""
    best = np.flatnonzero(np.isclose(cost, cost.min()))
    first = int(best[0])
    last = first
    while last + 1 < len(cost) and np.isclose(cost[last + 1], cost.min()):
        last += 1
    low = float(bars[first - 1]) if first > 0 else 0.0
    return (low + float(bars[last])) / 2


def fit(rows: Rows, keep: np.ndarray, share: float) -> EvidenceModel:
    """The model on the kept rows, with the bar at which it and the evidence bar together make the fewest expected
    mistakes when `share` of the questions are unanswerable."""
    x, y, already = rows.x[keep], rows.answerable[keep], rows.bar_refuses[keep]
    model = fit_logistic(x, y.astype(float), L2, features=LOOKUP_FEATURES)
    p = model.probability(x)
    bars = np.concatenate([[0.0], np.unique(p)])
    refused = (p[None, :] < bars[:, None]) | already[None, :]
    cost = (1 - share) * refused[:, y].mean(axis=1) + share * (~refused[:, ~y]).mean(axis=1)
    bar = plateau_middle(bars, cost)
    return EvidenceModel(model.features, model.mean, model.scale, model.weights, model.bias, refusal_bar=bar)


def rates(rows: Rows, refused: np.ndarray) -> dict[str, float]:
    return {
        "false_refusals": round(float(refused[rows.answerable].mean()), 4),
        "unanswerable_refused": round(float(refused[~rows.answerable].mean()), 4),
    }


def scores(rows: Rows, model_refuses: np.ndarray) -> dict[str, Any]:
    """The model alone, the evidence bar alone, and both (what the planner does)."""
    return {
        "questions": len(rows.answerable),
        "answerable": int(rows.answerable.sum()),
        "model": rates(rows, model_refuses),
        "evidence_bar": rates(rows, rows.bar_refuses),
        "both": rates(rows, model_refuses | rows.bar_refuses),
    }


def _tile(rows: Rows) -> Rows:
    return Rows(np.tile(rows.x, (REPEATS, 1)), np.tile(rows.answerable, REPEATS), np.tile(rows.bar_refuses, REPEATS),
                np.tile(rows.specific, REPEATS))  # fmt: skip


def cross_validate(rows: Rows, share: float) -> dict[str, Any]:
    """Out-of-fold refusals pooled over REPEATS shuffles of FOLDS folds of the questions the model judges; `overall`
    over all questions, the others refused by the evidence bar alone."""
    judged = rows.only(rows.specific)
    refuses = np.zeros((REPEATS, len(judged.answerable)), dtype=bool)
    for seed in range(REPEATS):
        folds = np.random.default_rng(seed).permutation(len(judged.answerable)) % FOLDS
        for f in range(FOLDS):
            model = fit(judged, folds != f, share)
            test = folds == f
            refuses[seed, test] = model.probability(judged.x[test]) < model.refusal_bar
    pooled = scores(_tile(judged), refuses.reshape(-1))
    pooled.update(questions=len(judged.answerable), answerable=int(judged.answerable.sum()))  # each question once
    combined = np.tile(rows.bar_refuses, (REPEATS, 1))
    combined[:, rows.specific] |= refuses
    overall = {"questions": len(rows.answerable), **rates(_tile(rows), combined.reshape(-1)),
               "evidence_bar": rates(rows, rows.bar_refuses)}  # fmt: skip
    return {"folds": FOLDS, "repeats": REPEATS, **pooled, "overall": overall}


def main(argv: Sequence[str] | None = None) -> int:
    files = "labelled question files to fit on (lookup and unanswerable rows)"
    p = fit_parser("python -m evals.fit_lookups", __doc__, LOOKUP_PARAMS_PATH, files)
    p.add_argument("--share-from", nargs="*", type=Path, default=[],
                   help="question files whose share of unanswerable questions the bar assumes (default: FILES)")  # fmt: skip
    args = p.parse_args(argv)
    rows = collect(args.files)
    judged = rows.only(rows.specific)
    if not judged.answerable.any() or judged.answerable.all():
        print("error: the files need answerable and unanswerable questions that ask for a number or a name", file=sys.stderr)
        return 2
    share = unanswerable_share(args.share_from or args.files)
    model = fit(judged, np.ones(len(judged.answerable), dtype=bool), share)
    report: dict[str, Any] = {"cv": cross_validate(rows, share), "refusal_bar": round(model.refusal_bar, 6)}
    report["unanswerable_share"] = round(share, 4)
    report["weights"] = dict(zip(LOOKUP_FEATURES, (round(float(w), 4) for w in model.weights), strict=True))
    for path in args.check:
        held = collect([path])
        refused = held.specific & (model.probability(held.x) < model.refusal_bar)
        report.setdefault("check", {})[str(path)] = {"judged": int(held.specific.sum()), **scores(held, refused)}
    report["command"] = "python -m evals.fit_lookups " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.write:
        provenance = {**report, "files": [str(f) for f in args.files], "date": dt.date.today().isoformat(), "l2": L2,
                      "unanswerable_share": round(share, 4)}  # fmt: skip
        LOOKUP_PARAMS_PATH.write_text(json.dumps({"model": model.to_dict(), "provenance": provenance}, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
