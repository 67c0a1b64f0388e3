"""Every labelled question file over the sample is consistent with the bundled corpus (evals.data.check_sample_data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.data import check_sample_data
from evals.fit_modes import load as load_modes

DATA = Path(check_sample_data.__file__).parent
# Mode labels only, read by evals.fit_modes (the check files only as checks) and evals.routing.
MODE_ONLY = {
    "sample_modes.jsonl",
    "sample_modes_findwork.jsonl",
    "sample_modes_check.jsonl",
    "sample_modes_onework.jsonl",
    "sample_modes_onework_check.jsonl",
}
QUESTION_FILES = sorted(p for p in DATA.glob("sample_*.jsonl") if p.name not in {"sample_claims.jsonl", *MODE_ONLY})


def test_the_question_files_are_all_found() -> None:
    names = {p.name for p in QUESTION_FILES}
    assert {"sample_questions.jsonl", "sample_heldout.jsonl", "sample_subtopics.jsonl", "sample_counted.jsonl"} <= names


@pytest.mark.parametrize("path", QUESTION_FILES, ids=lambda p: p.name)
def test_labels_match_the_corpus(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_sample_data.main([str(path)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(MODE_ONLY))
def test_mode_files_hold_known_modes(name: str) -> None:
    questions, labels = load_modes([DATA / name])
    assert len(questions) >= 20 and set(labels.tolist()) >= {0, 2}
