"""`python -m evals.routing`: the wording model's mode and the planner's, over the real sample store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.config import Settings
from evals.routing import route


@pytest.mark.slow
def test_routing_reports_where_the_planner_overrides_the_wording(sample_settings: Settings, tmp_path: Path) -> None:
    rows = [
        {"qid": "r1", "mode": "ask", "question": "Which benchmarks were used to evaluate CodeDPO?"},
        {"qid": "r2", "mode": "summarise", "question": "Which papers use AlphaCode as a baseline?"},
    ]
    path = tmp_path / "modes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report = route([path], sample_settings)["modes.jsonl"]
    assert report["questions"] == 2
    assert report["wording_accuracy"] == 0.5 and report["planner_accuracy"] == 1.0
    assert report["changed"] == [{"question": rows[0]["question"], "label": "ask", "wording": "summarise", "planner": "ask"}]
