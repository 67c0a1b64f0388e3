"""Fit the summary bar: the share of the best paper's retrieval score that a paper needs to enter a summary.

`python -m evals.fit_summary evals/data/sample_questions.jsonl [more files] [--write]` reads the subtopic questions of
our own labelled sets (never the public question set), retrieves each one's pool as a summary does, and picks the
bar that maximises mean F2 (gold papers as positives; papers listed as acceptable count neither way): recall weighs
twice, because a summary that misses papers on its subtopic fails its purpose, while one extra related paper is cheap. It reports
the leave-one-question-out figure, and with `--write` stores the bar in assistant/answering/scorer_params.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant import build_assistant
from assistant.answering.relevance import topic_query
from assistant.answering.scorer import PARAMS_PATH, floor6
from assistant.answering.strategies import SUMMARY_POOL, Query
from assistant.config import Settings, load_settings
from assistant.runtime import prepare_runtime
from evals.evidence_cv import MAX_FALSE_REFUSALS

GRID = np.round(np.arange(0.05, 0.96, 0.025), 3)
Pool = tuple[np.ndarray, np.ndarray, np.ndarray]  # relative score, is gold, is acceptable (retrieval order)


def pools(files: Sequence[Path], cap: int) -> list[Pool]:
    """Each subtopic question's pool: relative retrieval scores and which papers are gold or acceptable."""
    settings = load_settings()
    prepare_runtime(settings)
    assistant = build_assistant(settings)
    out = []
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            q = json.loads(line) if line.strip() else None
            if not q or q.get("type") != "subtopic":
                continue
            hits = assistant.retriever.search(topic_query(q["question"]), max(2 * cap, SUMMARY_POOL))
            top = hits[0].score if hits else 1.0
            rel = np.array([h.score / top if top else 0.0 for h in hits])
            gold = np.array([h.title in q["gold"] for h in hits])
            ok = np.array([h.title in q.get("acceptable", []) for h in hits])
            out.append((rel, gold, ok))
    return out


BETA = 2.0


def best_evidence(settings: Settings, files: Sequence[Path]) -> list[float]:
    """Each subtopic question's best sentence probability over its summary pool, in the given collection."""
    assistant = build_assistant(settings)
    out = []
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            q = json.loads(line) if line.strip() else None
            if q and q.get("type") == "subtopic":
                vector = assistant.embedder.embed_query(q["question"])
                found = assistant.modes["summarise"].retrieve(Query(q["question"], vector, 5, None))
                pool = assistant.evidence.build(q["question"], found.hits, vector)  # scored as the planner scores it
                out.append(max((e.best for e in pool), default=0.0))
    return out


def summary_refusal(args: argparse.Namespace) -> dict[str, Any]:
    """The bar below which a summary is refused: the highest that refuses at most MAX_FALSE_REFUSALS of our subtopic
    questions. Sentence probabilities of a topic are lower than a question's, so the question's bar refuses summaries
    whose topic the collection covers. Reported with how many of the same questions asked of another field's
    collection (`--cross-chroma-path`) it refuses."""
    base = load_settings()
    on_topic = np.sort(best_evidence(base, args.files))
    bar = float(on_topic[int(np.floor(MAX_FALSE_REFUSALS * len(on_topic)))])
    bar = floor6(bar)
    report: dict[str, Any] = {"refusal_bar": bar, "refused_on_topic": round(float(np.mean(on_topic < bar)), 4)}
    if args.cross_chroma_path:
        other = base.model_copy(update={"chroma_path": args.cross_chroma_path, "index_dir": args.cross_index_dir,
                                        "collection": args.cross_collection})  # fmt: skip
        off = np.asarray(best_evidence(other, args.files))
        report["refused_off_domain"] = round(float(np.mean(off < bar)), 4)
    return report


def f_beta(pool: Pool, bar: float, cap: int) -> float:
    rel, gold, ok = pool
    chosen = np.flatnonzero(rel >= bar)[:cap]
    if not len(chosen) or not gold.any():
        return 0.0
    hit = gold[chosen].sum()
    precision = hit / max(1, len(chosen) - ok[chosen].sum())
    recall = hit / gold.sum()
    b2 = BETA * BETA
    return float((1 + b2) * precision * recall / (b2 * precision + recall)) if hit else 0.0


def best_bar(data: Sequence[Pool], cap: int) -> float:
    scores = [np.mean([f_beta(p, b, cap) for p in data]) for b in GRID]
    return float(GRID[int(np.argmax(scores))])


def recall_precision(pool: Pool, bar: float, cap: int) -> tuple[float, float]:
    rel, gold, ok = pool
    chosen = np.flatnonzero(rel >= bar)[:cap]
    hit = gold[chosen].sum()
    return float(hit / max(1, gold.sum())), float((hit + ok[chosen].sum()) / max(1, len(chosen)))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.fit_summary", description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path, help="labelled question files (subtopic questions are used)")
    p.add_argument("--write", action="store_true", help=f"store the bar in {PARAMS_PATH.name}")
    p.add_argument("--cross-chroma-path", type=Path, help="a collection from another field, to report off-domain refusals")
    p.add_argument("--cross-index-dir", type=Path, help="its BM25 index folder")
    p.add_argument("--cross-collection", default="scifact", help="its collection name")
    args = p.parse_args(argv)
    cap = load_settings().summary_max_papers
    data = pools(args.files, cap)
    if not data:
        print("error: no subtopic questions in the given files", file=sys.stderr)
        return 2
    held_out = []
    for i in range(len(data)):  # leave one question out: the bar is fitted without it, then scored on it
        bar = best_bar(data[:i] + data[i + 1 :], cap)
        held_out.append(recall_precision(data[i], bar, cap))
    bar = best_bar(data, cap)
    report = {
        "questions": len(data),
        "bar": bar,
        "loo_recall": round(float(np.mean([r for r, _ in held_out])), 4),
        "loo_precision": round(float(np.mean([p for _, p in held_out])), 4),
        "command": "python -m evals.fit_summary " + " ".join(str(a) for a in (argv or sys.argv[1:])),
        **summary_refusal(args),
    }
    if args.write:
        params = json.loads(PARAMS_PATH.read_text(encoding="utf-8"))
        params["summary"] = report
        PARAMS_PATH.write_text(json.dumps(params, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
