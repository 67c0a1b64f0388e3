"""CI gate: the sample question set through the real answering path, extractive, must keep its targets."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from assistant.cli import main
from assistant.config import Settings
from tests.conftest import make_settings

QUESTIONS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "questions.jsonl"


@pytest.fixture(scope="module")
def report(sample_dir: Path) -> dict[str, Any]:
    if not QUESTIONS.is_file():
        pytest.skip(f"{QUESTIONS} is not here")
    settings: Settings = make_settings(sample_dir)
    assert not settings.llm_configured  # the gate is for the offline, extractive answers
    out = io.StringIO()
    assert main(["eval", "questions", str(QUESTIONS), "--json"], settings=settings, out=out) == 0
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


@pytest.mark.slow
def test_report_shape(report: dict[str, Any]) -> None:
    assert set(report) >= {"overall", "by_type", "questions"}
    assert len(report["questions"]) == 40
    assert set(report["by_type"]) == {"lookup", "comparative", "subtopic", "unanswerable", "followup"}
    for name in ("recall_at_5", "citation_recall", "citation_precision", "refusal_accuracy", "false_refusals", "answer_points"):
        assert name in report["overall"]


# The gate holds the figures measured with the committed models (docs/benchmarks.md), so a change that loses ground
# fails. Lookup precision, overall precision, recall@5 and unanswerable refusals (4 of 4) gate at issue 10's targets.
# Subtopic citation recall (target 0.85) and false refusals (target none) are not met, and their floors sit at today's
# figures: a summary's papers are chosen by retrieval score, whose ranking misses some papers on a subtopic; the one
# answerable question refused is a long lookup that asks "how well", which the lookup model judges.


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lookup", "comparative", "followup"])
def test_recall_at_5(report: dict[str, Any], kind: str) -> None:
    assert report["by_type"][kind]["recall_at_5"] >= 0.95, [q for q in report["questions"] if q["type"] == kind]


@pytest.mark.slow
def test_subtopic_citation_recall(report: dict[str, Any]) -> None:
    assert report["by_type"]["subtopic"]["citation_recall"] >= 0.75


@pytest.mark.slow
def test_refusals(report: dict[str, Any]) -> None:
    unanswerable = report["by_type"]["unanswerable"]
    assert unanswerable["refused"] >= 4, "all 4 unanswerable questions must be refused"
    assert report["overall"]["false_refusals"] <= 1, [q["qid"] for q in report["questions"] if q["false_refusals"]]


@pytest.mark.slow
def test_citation_precision(report: dict[str, Any]) -> None:
    assert report["by_type"]["lookup"]["citation_precision"] >= 0.95
    assert report["overall"]["citation_precision"] >= 0.90


@pytest.mark.slow
def test_citations_and_points(report: dict[str, Any]) -> None:
    overall = report["overall"]
    assert overall["citation_recall"] >= 0.85
    assert overall["answer_points"] >= 0.4
