"""Metric arithmetic on hand-made rankings and answers."""

from __future__ import annotations

import math

import pytest

from assistant.models import Answer, Citation, Evidence
from evals.evaluate import aggregate, score_answer
from evals.metrics import (
    answer_points,
    citation_precision,
    mrr_at_k,
    ndcg_at_k,
    point_coverage,
    recall_at_k,
    retrieval_scores,
    title_recall,
)


def test_ndcg_binary_by_hand() -> None:
    # Relevant: a, b, c. Ranking: a (rank 1), x, b (rank 3), y.
    # DCG  = 1/log2(1+1) + 1/log2(3+1) = 1 + 0.5 = 1.5
    # IDCG = 1/log2(2) + 1/log2(3) + 1/log2(4) = 1 + 0.6309298 + 0.5 = 2.1309298
    # nDCG = 1.5 / 2.1309298 = 0.7039180
    got = ndcg_at_k(["a", "x", "b", "y"], {"a": 1, "b": 1, "c": 1}, 10)
    assert got == pytest.approx(0.7039180, abs=1e-6)


def test_ndcg_graded_and_cutoff() -> None:
    # Gains b=1, a=2, ranked b then a: DCG = 1/1 + 2/log2(3) = 2.2618595; IDCG = 2/1 + 1/log2(3) = 2.6309298.
    assert ndcg_at_k(["b", "a"], {"a": 2, "b": 1}) == pytest.approx(2.2618595 / 2.6309298, abs=1e-6)
    # The only relevant document sits at rank 3, beyond k=2.
    assert ndcg_at_k(["x", "y", "a"], {"a": 1}, k=2) == 0.0
    assert ndcg_at_k(["a"], {"a": 1}) == 1.0
    assert ndcg_at_k(["a"], {}) == 0.0


def test_recall_and_mrr() -> None:
    ranked = ["x", "a", "y", "b"]
    assert recall_at_k(ranked, {"a", "b", "c", "d"}, 2) == 0.25
    assert recall_at_k(ranked, {"a", "b", "c", "d"}, 10) == 0.5
    assert recall_at_k(ranked, set(), 10) == 0.0
    assert mrr_at_k(ranked, {"b", "a"}, 10) == 0.5
    assert mrr_at_k(ranked, {"b"}, 3) == 0.0
    assert mrr_at_k(ranked, {"zz"}) == 0.0


def test_retrieval_scores_keys() -> None:
    scores = retrieval_scores(["a", "b"], {"b": 1, "c": 0})
    assert scores == {"ndcg@10": pytest.approx(1 / math.log2(3)), "recall@10": 1.0, "recall@100": 1.0, "mrr@10": 0.5}


def _ev(title: str) -> Evidence:
    return Evidence(paper_id=title.lower(), title=title, abstract="", score=1.0, sentences=())


def _answer(found: list[str], cited: list[str], *, refused: bool = False, text: str = "") -> Answer:
    evidence = tuple(_ev(t) for t in found)
    citations = tuple(Citation(n, t.lower(), t, ()) for n, t in enumerate(cited, 1))
    return Answer(
        question="q", standalone_question="q", mode="ask", text=text, citations=citations, evidence=evidence, refused=refused
    )


def test_citation_precision_and_recall_on_answers() -> None:
    q = {"qid": "c1", "type": "comparative", "gold": ["Paper A", "Paper B"], "acceptable": ["Paper C"], "answer_points": []}
    # Cites A (gold), C (acceptable) and D (neither); found A, C, D, E, F, B: B is sixth.
    found = ["Paper A", "Paper C", "Paper D", "Paper E", "Paper F", "Paper B"]
    row = score_answer(q, _answer(found, ["paper  a", "Paper C", "Paper D"]))
    assert row["recall_at_5"] == 0.5  # B is outside the first five
    assert row["citation_recall"] == 0.5  # A cited (case and spaces ignored), B not
    assert row["citation_precision"] == pytest.approx(2 / 3)  # A and C allowed, D not
    assert title_recall([], ["Paper A"]) == 0.0
    assert citation_precision([], ["Paper A"], []) is None  # nothing cited: precision undefined, not 0


def test_refusals_counted() -> None:
    unanswerable = {"qid": "u", "type": "unanswerable", "gold": [], "acceptable": [], "answer_points": ["Says it is not covered"]}
    lookup = {"qid": "l", "type": "lookup", "gold": ["Paper A"], "acceptable": [], "answer_points": ["alpha beta"]}
    refused_right = score_answer(unanswerable, _answer(["Paper A"], [], refused=True))
    answered_wrong = score_answer(unanswerable, _answer(["Paper A"], ["Paper A"]))
    refused_wrong = score_answer(lookup, _answer(["Paper A"], [], refused=True))
    right = refused_right
    assert (right["refusal_accuracy"], right["false_refusals"], right["answer_points"]) == (1.0, None, 1.0)
    assert (answered_wrong["refusal_accuracy"], answered_wrong["answer_points"]) == (0.0, 0.0)
    assert answered_wrong["citation_precision"] == 0.0  # citing a paper for an unanswerable question is an error
    assert (refused_wrong["false_refusals"], refused_wrong["refusal_accuracy"]) == (1, None)
    overall = aggregate([refused_right, answered_wrong, refused_wrong])
    assert overall["refusal_accuracy"] == 0.5
    assert overall["false_refusals"] == 1
    assert overall["recall_at_5"] == 1.0  # only the lookup has gold


def test_answer_points_lexical() -> None:
    # Stemmed content words: "achieves", "achieved" -> achiev; "54.3%" keeps its number tokens.
    point = "AlphaCode achieved a top 54.3% ranking"
    assert point_coverage(point, "The system AlphaCode achieves rankings in the top 54.3% of contests.") == 1.0
    assert point_coverage(point, "AlphaCode is a system.") < 0.6
    assert answer_points([point, "unrelated claim about oceans"], "AlphaCode achieved top 54.3% ranking") == 0.5
    assert answer_points([], "anything") is None
