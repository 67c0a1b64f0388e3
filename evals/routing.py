"""`python -m evals.routing FILE ... [--json]`: which mode each labelled question gets, from the wording model alone
and from the planner (which also reads the collection: a detected overview of one named paper's details is a direct
answer). Needs the store the questions were written over (the settings' `ASSISTANT_CHROMA_PATH`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.answering.modes import MODES, resolve_mode
from assistant.config import Settings, load_settings
from evals.fit_modes import load


def route(files: Sequence[Path], settings: Settings) -> dict[str, Any]:
    """Per file: accuracy of the wording model and of the planner, and the questions on which the two differ."""
    from assistant import build_assistant

    assistant = build_assistant(settings)
    out: dict[str, Any] = {}
    for path in files:
        questions, labels = load([path])
        vectors = assistant.embedder.embed(questions)
        worded = [resolve_mode(q, None, v, assistant.embedder.name) for q, v in zip(questions, vectors, strict=True)]
        planned = [assistant.plan(q).mode for q in questions]
        truth = [MODES[i] for i in labels]
        out[path.name] = {
            "questions": len(questions),
            "wording_accuracy": round(float(np.mean([w == t for w, t in zip(worded, truth, strict=True)])), 3),
            "planner_accuracy": round(float(np.mean([p == t for p, t in zip(planned, truth, strict=True)])), 3),
            "changed": [
                {"question": q, "label": t, "wording": w, "planner": p}
                for q, t, w, p in zip(questions, truth, worded, planned, strict=True)
                if w != p
            ],
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.routing", description=(__doc__ or "").splitlines()[0])
    p.add_argument("files", nargs="+", type=Path, help="question files with a mode or a question type per row")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    args = p.parse_args(argv)
    report = route(args.files, load_settings())
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    for name, r in report.items():
        print(f"{name}: {r['questions']} questions, wording {r['wording_accuracy']:.3f}, planner {r['planner_accuracy']:.3f}")
        for c in r["changed"]:
            print(f"  [{c['label']}] {c['wording']} -> {c['planner']}: {c['question']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
