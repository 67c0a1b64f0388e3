"""Fit the mode classifier (ask, compare or summarise) on labelled questions, and report it cross-validated.

`python -m evals.fit_modes evals/data/sample_questions.jsonl evals/data/sample_paraphrased.jsonl
evals/data/sample_modes.jsonl [--check ../shared/eval/questions.jsonl] [--write]`

A row's mode is its `mode` field, or follows from its question `type` (lookup and followup: ask; comparative: compare;
subtopic: summarise; unanswerable questions have no mode to learn and are skipped). Accuracy is reported over
repeated 5-fold cross-validation (centroids and regressions fitted on four folds, scored on the fifth), beside the
cue-word rule alone (an overview cue wins, then a comparison cue, else ask). `--check` files are scored once with the
model fitted on everything, and never fitted on. `--write` stores the model in assistant/answering/mode_params.json.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.answering.modes import CUE_FEATURES, MODE_PARAMS_PATH, MODES, VECTOR_FEATURES, ModeModel, cues
from assistant.answering.scorer import fit_logistic
from assistant.config import load_settings
from assistant.errors import InputError
from assistant.index.embed import build_embedder
from assistant.runtime import prepare_runtime
from assistant.vectors import unit
from evals.fit_args import fit_parser

TYPE_MODES = {"lookup": "ask", "followup": "ask", "comparative": "compare", "subtopic": "summarise"}
L2 = 1.0
FOLDS, REPEATS = 5, 5


def load(paths: Sequence[Path]) -> tuple[list[str], np.ndarray]:
    """Questions and their mode indices; a row with neither a known mode nor a known type is an error."""
    questions, labels = [], []
    for path in paths:
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                mode = row.get("mode") or TYPE_MODES.get(row["type"])
                question = str(row["question"])
            except (ValueError, KeyError, TypeError, AttributeError):
                raise InputError(f"{path}:{i}: not a question with a mode or type") from None
            if row.get("type") == "unanswerable" and not row.get("mode"):
                continue
            if mode not in MODES:
                raise InputError(f"{path}:{i}: unknown mode or type {mode or row.get('type')!r}")
            questions.append(question)
            labels.append(MODES.index(mode))
    return questions, np.asarray(labels)


def fit(cue_rows: np.ndarray, vectors: np.ndarray, labels: np.ndarray, embedder: str, l2: float = L2) -> ModeModel:
    """Centroids of each mode's question vectors, then one-vs-rest regressions with and without the vector features."""
    centroids = np.stack([unit(vectors[labels == k].mean(axis=0)) for k in range(len(MODES))])
    full = np.hstack([cue_rows, vectors @ centroids.T])
    with_vector = tuple(
        fit_logistic(full, (labels == k).astype(float), l2, features=CUE_FEATURES + VECTOR_FEATURES) for k in range(len(MODES))
    )
    cues_only = tuple(fit_logistic(cue_rows, (labels == k).astype(float), l2, features=CUE_FEATURES) for k in range(len(MODES)))
    return ModeModel(embedder, centroids, with_vector, cues_only)


def predict(model: ModeModel, questions: Sequence[str], vectors: np.ndarray | None) -> np.ndarray:
    embedder = model.embedder if vectors is not None else None
    return np.array(
        [MODES.index(model.detect(q, None if vectors is None else vectors[i], embedder)) for i, q in enumerate(questions)]
    )


def cue_rule(cue_rows: np.ndarray) -> np.ndarray:
    """The cue words alone: an overview cue wins, then a comparison cue, else ask."""
    compare, summarise = CUE_FEATURES.index("compare_cue"), CUE_FEATURES.index("summarise_cue")
    return np.where(cue_rows[:, summarise] > 0, 2, np.where(cue_rows[:, compare] > 0, 1, 0))


def scores(labels: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Accuracy, each mode's recall, and the confusion matrix (rows: true mode, columns: detected)."""
    confusion = np.zeros((len(MODES), len(MODES)), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    recall = {m: round(float(confusion[k, k] / max(1, confusion[k].sum())), 4) for k, m in enumerate(MODES)}
    return {"accuracy": round(float(np.mean(labels == predicted)), 4), "recall": recall, "confusion": confusion.tolist()}


def cross_validate(questions: Sequence[str], cue_rows: np.ndarray, vectors: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Out-of-fold detections pooled over REPEATS shuffles of FOLDS folds, with and without the vector features."""
    truth, full, short = [], [], []
    for seed in range(REPEATS):
        folds = np.random.default_rng(seed).permutation(len(labels)) % FOLDS
        for f in range(FOLDS):
            train, test = folds != f, np.flatnonzero(folds == f)
            model = fit(cue_rows[train], vectors[train], labels[train], "cv")
            held = [questions[int(i)] for i in test]
            truth.append(labels[test])
            full.append(predict(model, held, vectors[test]))
            short.append(predict(model, held, None))
    y = np.concatenate(truth)
    return {
        "folds": FOLDS,
        "repeats": REPEATS,
        "with_vector": scores(y, np.concatenate(full)),
        "cues_only": scores(y, np.concatenate(short)),
        "cue_rule": scores(labels, cue_rule(cue_rows)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = fit_parser("python -m evals.fit_modes", __doc__, MODE_PARAMS_PATH, "labelled question files to fit on")
    args = p.parse_args(argv)
    settings = load_settings()
    prepare_runtime(settings)
    embedder = build_embedder(settings)
    try:
        questions, labels = load(args.files)
        checks = [(path, *load([path])) for path in args.check]
    except (InputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cue_rows = np.stack([cues(q) for q in questions])
    vectors = np.asarray(embedder.embed(questions), dtype=np.float64)
    model = fit(cue_rows, vectors, labels, embedder.name)
    report: dict[str, Any] = {
        "questions": len(questions),
        "per_mode": {m: int(np.sum(labels == k)) for k, m in enumerate(MODES)},
        "cv": cross_validate(questions, cue_rows, vectors, labels),
    }
    for path, cq, cy in checks:
        cv = np.asarray(embedder.embed(cq), dtype=np.float64)
        report.setdefault("check", {})[str(path)] = {
            "model": scores(cy, predict(model, cq, cv)),
            "cue_rule": scores(cy, cue_rule(np.stack([cues(q) for q in cq]))),
        }
    report["command"] = "python -m evals.fit_modes " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.write:
        provenance = {**report, "files": [str(f) for f in args.files], "date": dt.date.today().isoformat(), "l2": L2}
        saved = {"model": model.to_dict(), "provenance": provenance}
        MODE_PARAMS_PATH.write_text(json.dumps(saved, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
