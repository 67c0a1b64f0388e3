"""The lookup model: what it reads from a question and its best paper, its committed parameters, and its refit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant.answering.asking import asks_specific
from assistant.answering.lookups import LOOKUP_FEATURES, LOOKUP_PARAMS_PATH, load_lookup_model, lookup_features, measure
from assistant.answering.relevance import refusal_reason
from assistant.answering.scorer import DocFreqTermStats
from assistant.models import Evidence, Sentence
from evals.fit_lookups import plateau_middle

ABSTRACT = "CoEdIT is a text editing model. It is 60x smaller than the largest models it competes with."
STATS = DocFreqTermStats.from_texts([ABSTRACT, "A survey of program synthesis.", "Lion is an optimizer."])


def _evidence(best: float) -> Evidence:
    first = ABSTRACT.split(". ")[0] + "."
    sentence = Sentence(first, 0, len(first), best)
    return Evidence("p1", "CoEdIT: Text Editing by Task-Specific Instruction Tuning", ABSTRACT, 1.0, (sentence,), best=best)


def _feature(x: np.ndarray, name: str) -> float:
    return float(x[LOOKUP_FEATURES.index(name)])


def test_measure_is_the_thing_asked_for() -> None:
    assert measure("What learning rate was used to train Lion?") == {"learn", "rate"}
    assert measure("How many parameters does the CoEdIT model have?") == {"paramet"}
    assert measure("Is it true that priors help?") == frozenset()


def test_a_figure_the_paper_never_measures_is_absent_and_a_named_subject_it_holds_is_not() -> None:
    x = lookup_features("How many parameters does the CoEdIT model have?", [_evidence(0.3)], STATS)
    assert _feature(x, "measure_absent_paper") == 1.0  # "parameters" is nowhere in the abstract
    assert _feature(x, "number_absent") == 1.0  # the best sentence holds no figure
    assert _feature(x, "name_absent_paper") == 0.0  # CoEdIT is the paper's subject
    y = lookup_features("How many parameters does ToolCoder have?", [_evidence(0.3)], STATS)
    assert _feature(y, "name_absent_paper") > 0.0


def test_only_questions_asking_for_a_number_or_a_name_are_judged() -> None:
    assert asks_specific("How many parameters does CoEdIT have?")
    assert asks_specific("Which dataset does CodeDPO train on?")
    assert asks_specific("When was the AlgoPerf benchmark released?")  # a date
    assert asks_specific("In what year was the competition held?")
    assert asks_specific("Which came first, and when did CodeDPO come out?")
    assert not asks_specific("When does fine-tuning hurt general ability?")  # a condition, not a date
    assert not asks_specific("What happens to accuracy when was removed from the prompt?")  # not a clause's start
    assert not asks_specific("Lion uses less memory than Adam.")  # a statement keeps the evidence bar alone
    assert not asks_specific("How does CoGEX use pseudo-code?")


@pytest.mark.parametrize(
    "question",
    [
        "What ImageNet top-1 accuracy did the models found with PyGlove reach?",  # two modifiers, one hyphenated
        "What pass@1 score does RethinkMCTS get?",
        "Which pretrained base model is CoEdIT fine-tuned from?",
        "What in-domain accuracy does it reach?",  # "in-domain" is a modifier, not the preposition "in"
        "What new score did they add?",  # one modifier may be any open-class word
        "By what factor does caching speed up the search?",
    ],
)
def test_the_head_noun_may_follow_up_to_two_modifiers(question: str) -> None:
    assert asks_specific(question)


def test_a_metric_in_at_notation_is_a_quantity_head_before_a_verb() -> None:
    assert asks_specific("What pass@1 does RethinkMCTS get on MBPP?")
    assert asks_specific("What HumanEval pass@1 does WaveCoder achieve?")  # after a modifier
    assert asks_specific("Which recall@10 is reported for the hybrid retriever?")
    assert not asks_specific("Which pass@k variants does ENAMEL define?")  # a modifier of "variants"
    assert not asks_specific("What is eff@k and how does it differ from pass@k?")  # after a copula: a definition
    assert not asks_specific("Which papers go beyond pass@k correctness?")


@pytest.mark.parametrize(
    "question",
    [
        "Which papers report accuracy on MMLU?",  # "papers" asks for papers; the stopword test keeps the clause out
        "Which work fine-tunes models on narrowly defined sub-tasks?",
        "Which method improves accuracy most?",
        "What factor drives the speed-up?",  # a cause, not a figure
    ],
)
def test_a_clause_is_no_noun_phrase(question: str) -> None:
    assert not asks_specific(question)


def test_the_bar_sits_in_the_middle_of_the_lowest_cost_interval() -> None:
    bars = np.asarray([0.0, 0.1, 0.3, 0.4, 0.8])
    assert plateau_middle(bars, np.asarray([0.5, 0.4, 0.2, 0.2, 0.3])) == pytest.approx((0.1 + 0.4) / 2)
    assert plateau_middle(bars, np.asarray([0.5, 0.4, 0.3, 0.3, 0.1])) == pytest.approx((0.4 + 0.8) / 2)
    assert plateau_middle(bars, np.full(5, 0.2)) == pytest.approx(0.8 / 2)


def test_no_evidence_reads_as_nothing_stated() -> None:
    x = lookup_features("What is B4?", [], STATS)
    assert _feature(x, "stems_absent_paper") == 1.0 and _feature(x, "best") < -10


def test_committed_model_is_small_and_reports_its_cross_validation() -> None:
    assert LOOKUP_PARAMS_PATH.stat().st_size < 100_000
    model = load_lookup_model()
    assert model is not None and 0.0 < model.refusal_bar < 1.0
    cv = json.loads(LOOKUP_PARAMS_PATH.read_text(encoding="utf-8"))["provenance"]["cv"]
    # Together with the evidence bar it refuses more unanswerable questions than that bar alone, at few more mistakes.
    overall = cv["overall"]
    gained = overall["unanswerable_refused"] - overall["evidence_bar"]["unanswerable_refused"]
    cost = overall["false_refusals"] - overall["evidence_bar"]["false_refusals"]
    assert gained > 0.2 and gained > 4 * cost, overall


def test_a_broken_parameter_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "lookup_params.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lookup_params\.json: cannot read"):
        load_lookup_model(bad)
    assert load_lookup_model(tmp_path / "missing.json") is None


def test_a_refusal_just_under_its_bar_shows_the_difference() -> None:
    reason = refusal_reason([_evidence(0.0645)], (), 0.064812)
    assert "0.0645 < 0.0648" in reason  # at two decimals both read 0.06
    assert "0.10 < 0.30" in refusal_reason([_evidence(0.1)], (), 0.3)
    assert refusal_reason([_evidence(0.5)], (), 0.3) == ""
