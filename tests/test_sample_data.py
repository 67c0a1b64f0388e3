"""Every labelled question file over the sample is consistent with the bundled corpus (evals.data.check_sample_data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.data import check_sample_data

DATA = Path(check_sample_data.__file__).parent
QUESTION_FILES = sorted(p for p in DATA.glob("sample_*.jsonl") if p.name not in {"sample_claims.jsonl", "sample_modes.jsonl"})


def test_the_question_files_are_all_found() -> None:
    names = {p.name for p in QUESTION_FILES}
    assert {"sample_questions.jsonl", "sample_heldout.jsonl", "sample_subtopics.jsonl", "sample_counted.jsonl"} <= names


@pytest.mark.parametrize("path", QUESTION_FILES, ids=lambda p: p.name)
def test_labels_match_the_corpus(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_sample_data.main([str(path)]) == 0, capsys.readouterr().err
