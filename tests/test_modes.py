"""The mode classifier: committed parameters, what it decides on plain cases, its fallback, and its refit command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.answering.asking import asked_count
from assistant.answering.modes import MODE_PARAMS_PATH, MODES, cues, detect_mode, load_mode_model, resolve_mode
from evals import fit_modes

CASES = [
    ("How do CoGEX and Think-and-Execute use pseudo-code differently?", "compare"),
    ("Compare Lion and Adam optimizers", "compare"),
    ("Summarise what this collection says about large language model reasoning", "summarise"),
    ("What is B4?", "ask"),
    ("Is it true that Lion uses less memory than Adam?", "ask"),
]


def test_committed_model_is_small_and_beat_the_cue_words_cross_validated() -> None:
    assert MODE_PARAMS_PATH.stat().st_size < 100_000
    cv = json.loads(MODE_PARAMS_PATH.read_text(encoding="utf-8"))["provenance"]["cv"]
    assert cv["with_vector"]["accuracy"] > cv["cue_rule"]["accuracy"] + 0.05, cv


@pytest.mark.parametrize(("question", "mode"), CASES)
def test_plain_questions_get_their_mode_with_and_without_the_vector(question: str, mode: str, embedder: Any) -> None:
    assert resolve_mode(question, None, embedder.embed_query(question), embedder.name) == mode
    assert resolve_mode(question, "auto") == mode  # cue-only regressions


def test_a_claim_check_is_a_question_however_it_is_worded(embedder: Any) -> None:
    """ "Is it true that ..." asks about a claim, even when the claim holds "both" or "compared"."""
    claim = "Is it true that both drugs reduce mortality compared with placebo in each trial?"
    assert resolve_mode(claim, None, embedder.embed_query(claim), embedder.name) == "ask"


@pytest.mark.parametrize(
    ("question", "count"),
    [
        ("Compare the two studies on optimizers for training deep networks.", 2),
        ("Three papers build new benchmarks on top of HumanEval. What does each measure?", 3),
        ("What do the 2 survey articles cover?", 2),
        ("Which three approaches does the personalization paper compare?", None),  # inside one paper
        ("Which paper introduces two new benchmarks?", None),
        ("Which of the three methods works best?", None),  # "works" is a verb here
        ("Why does Llama 2 works so well?", None),
        ("Which GPT-4 papers report pass@1?", None),  # part of a name
        ("Do at least two papers use MBPP?", None),  # a bound, not a count
        ("Are there two or more studies on PEFT?", None),
        ("Two works present systems for distributed training.", 2),
    ],
)
def test_a_stated_number_of_papers_is_read(question: str, count: int | None) -> None:
    assert asked_count(question) == count


def test_a_stated_number_of_papers_asks_for_a_comparison_unless_it_is_a_claim() -> None:
    question = "What did the two studies on unit test generation conclude?"
    assert detect_mode(question) != "compare"  # the classifier alone reads no comparison; the stated count makes one
    assert resolve_mode(question, None) == "compare"
    assert resolve_mode(question, "ask") == "ask"  # an explicit mode wins
    assert resolve_mode("Is it true that two studies found no effect?", None) == "ask"


def test_an_explicit_mode_wins_and_an_unknown_one_is_refused() -> None:
    assert resolve_mode("What is B4?", "summarise") == "summarise"
    with pytest.raises(ValueError, match="unknown mode 'table'"):
        resolve_mode("What is B4?", "table")


def test_a_vector_from_another_embedder_is_not_measured_against_the_centroids() -> None:
    model = load_mode_model()
    question = "What work is there on neural architecture search?"
    wrong = np.ones(model.centroids.shape[1])
    assert np.allclose(model.probabilities(question, wrong, "another-model"), model.probabilities(question))


def test_two_names_side_by_side_are_paired() -> None:
    names_at = fit_modes.CUE_FEATURES.index("paired_names")
    assert cues("What do PG-TD and PLANSEARCH search over?")[names_at] == 1.0
    assert cues("Where does the data come from in GLAN and in WaveCoder?")[names_at] == 1.0
    assert cues("How does DSPy compile pipelines, and what does it report on GSM8K?")[names_at] == 0.0


def test_one_work_many_works_and_the_whole_collection_are_read() -> None:
    one, many, whole = (fit_modes.CUE_FEATURES.index(f) for f in ("one_work", "many_works", "whole_collection"))
    assert cues("Which paper teaches a model to search an API?")[[one, many, whole]].tolist() == [1.0, 0.0, 0.0]
    assert cues("What approaches to program repair are there?")[[one, many, whole]].tolist() == [0.0, 1.0, 0.0]
    assert cues("What does this collection say about code review?")[whole] == 1.0
    assert cues("Which work learns a data-collection policy?")[whole] == 0.0  # a hyphenated word, not the collection
    assert cues("What work is there on tree search?")[one] == 0.0  # "what work" is work in general, not one paper


def test_a_broken_parameter_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "mode_params.json"
    bad.write_text(json.dumps({"model": {"embedder": "x", "centroids": [[1.0]]}}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"mode_params\.json: bad or missing field"):
        load_mode_model(bad)


@pytest.mark.slow
def test_refit_reports_cross_validated_accuracy_and_leaves_the_committed_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = MODE_PARAMS_PATH.read_bytes()
    rows = [{"mode": m, "question": q} for q, m in CASES * 4] + [{"type": "unanswerable", "question": "Who wrote Hamlet?"}]
    data = tmp_path / "modes.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert fit_modes.main([str(data)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["questions"] == 20 and report["per_mode"] == {"ask": 8, "compare": 8, "summarise": 4}
    assert report["cv"]["with_vector"]["accuracy"] == 1.0  # the same questions repeat across folds
    assert MODE_PARAMS_PATH.read_bytes() == before
    data.write_text('{"mode": "table", "question": "x"}\n', encoding="utf-8")
    assert fit_modes.main([str(data)]) == 2
    assert f"{data}:1: unknown mode or type 'table'" in capsys.readouterr().err
    assert set(MODES) == {"ask", "compare", "summarise"}
