"""The claim-check model: which questions it applies to, its features, its committed parameters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant.answering.answerability import QUESTION_FEATURES, is_claim_check, load_claim_model, question_features
from assistant.answering.scorer import FEATURES, PARAMS_PATH, EvidenceModel


@pytest.mark.parametrize(
    ("question", "claim"),
    [
        ("Is it true that aspirin lowers the risk of stroke?", True),
        ("is it the case that B4 beats random selection?", True),
        ("Verify that CoGEX uses pseudo-programs.", True),
        ("What is B4?", False),
        ("Which paper says it is true that tests are noisy?", False),
    ],
)
def test_claim_checks_are_told_from_questions(question: str, claim: bool) -> None:
    assert is_claim_check(question) is claim


def test_question_features_read_the_best_sentence_and_the_runner_up_paper() -> None:
    x = np.zeros((4, len(FEATURES)))
    x[:, FEATURES.index("lexical")] = [0.1, 0.9, 0.2, 0.3]
    probs = np.asarray([0.05, 0.8, 0.3, 0.2])
    paper = np.asarray([0, 0, 1, 1])
    f = dict(zip(QUESTION_FEATURES, question_features(x, probs, paper), strict=True))
    assert f["best"] == pytest.approx(np.log(0.8 / 0.2))
    assert f["second"] == pytest.approx(np.log(0.3 / 0.7))
    assert f["second_paper"] == pytest.approx(np.log(0.3 / 0.7))
    assert f["best_lexical"] == pytest.approx(0.9)
    assert (f["sentences_above"], f["papers_above"]) == (3.0, 2.0)


def test_an_empty_pool_has_features_that_refuse() -> None:
    f = question_features(np.zeros((0, len(FEATURES))), np.zeros(0), np.zeros(0, dtype=int))
    assert len(f) == len(QUESTION_FEATURES) and f[0] < -10


def test_the_committed_claim_model_is_fitted_for_these_features_with_bars() -> None:
    model = load_claim_model()
    assert model is not None and model.features == QUESTION_FEATURES
    assert 0.0 < model.cite_bar < 1.0 and 0.0 < model.refusal_bar < 1.0
    params = json.loads(PARAMS_PATH.read_text(encoding="utf-8"))
    assert params["cv"]["claims"]["mean"]["scifact"]["false_refusals"] <= 0.10


def test_a_claim_model_for_other_features_is_refused(tmp_path: Path) -> None:
    data = json.loads(PARAMS_PATH.read_text(encoding="utf-8"))
    data["claims"]["features"] = [*data["claims"]["features"][:-1], "something_else"]
    path = tmp_path / "params.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=r"claims.*refit"):
        load_claim_model(path)
    with pytest.raises(ValueError, match="refit"):
        EvidenceModel.from_dict(data["claims"], "x")  # the sentence model's features are not the claim model's
