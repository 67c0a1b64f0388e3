"""The quote ranker: a softmax within each abstract, so it orders an abstract's sentences and ignores what the
abstract's sentences share."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from assistant.answering.scorer import FEATURES
from evals.quote_cv import fit_ranker
from tests.hits import one_paper_hit

COSINE, PAPER_RANK, POSITION = FEATURES.index("cosine"), FEATURES.index("paper_rank"), FEATURES.index("position")


def _abstracts(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Abstracts of six sentences; the gold one has the highest cosine, and each abstract its own paper rank."""
    x = rng.normal(size=(6 * n, len(FEATURES)))
    y = np.zeros(6 * n)
    groups = []
    for i in range(n):
        rows = np.arange(6 * i, 6 * i + 6)
        x[rows, PAPER_RANK] = rng.normal()
        gold = rows[rng.integers(6)]
        x[gold, COSINE] = x[rows, COSINE].max() + 1.0
        y[gold] = 1.0
        groups.append(rows)
    return x, y, groups


def test_the_ranker_puts_the_answering_sentence_first_on_new_abstracts() -> None:
    rng = np.random.default_rng(0)
    x, y, groups = _abstracts(rng, 200)
    ranker = fit_ranker(x, y, groups)
    new_x, new_y, new_groups = _abstracts(rng, 50)
    first = [rows[int(np.argmax(ranker.probability(new_x[rows])))] for rows in new_groups]
    assert new_y[first].mean() > 0.9
    assert ranker.weights[COSINE] > 1.0


def test_what_an_abstract_shares_gets_no_weight() -> None:
    x, y, groups = _abstracts(np.random.default_rng(1), 200)
    ranker = fit_ranker(x, y, groups)
    assert abs(ranker.weights[PAPER_RANK]) < 1e-6  # the same for every sentence of an abstract: it cannot order them
    assert abs(ranker.weights[POSITION]) < abs(ranker.weights[COSINE]) / 5  # noise here


def test_weighted_abstracts_count_more() -> None:
    rng = np.random.default_rng(2)
    x, y, groups = _abstracts(rng, 100)
    flipped = y.copy()
    for rows in groups[:50]:  # half the abstracts say the lowest cosine answers
        flipped[rows] = 0.0
        flipped[rows[int(np.argmin(x[rows, COSINE]))]] = 1.0
    heavy_first = fit_ranker(x, flipped, groups, weight=np.r_[np.full(50, 10.0), np.ones(50)])
    heavy_last = fit_ranker(x, flipped, groups, weight=np.r_[np.ones(50), np.full(50, 10.0)])
    assert heavy_first.weights[COSINE] < 0 < heavy_last.weights[COSINE]


@pytest.mark.slow
def test_quotes_follow_the_ranker_and_the_best_stays_the_most_probable(embedder: Any) -> None:
    from assistant.answering.evidence import EvidenceBuilder
    from assistant.answering.scorer import DocFreqTermStats

    abstract = "Priors help code models. We test priors on five tasks. Priors raise pass@1 by 4 points on HumanEval."
    hit = one_paper_hit(abstract)
    builder = EvidenceBuilder(embedder, DocFreqTermStats.from_texts([abstract]), sentences=1)
    assert builder.quotes is not None  # the committed ranker
    question = "Do priors help code models?"
    late = np.zeros(len(FEATURES))
    late[POSITION] = 5.0  # a ranker that quotes the last sentence first
    builder.quotes = replace(builder.quotes, weights=late)
    [ev] = builder.build(question, [hit])
    assert ev.sentences[0].text.startswith("Priors raise pass@1")
    scores = [s.score for s in builder.all_sentences(hit, question, embedder.embed_query(question))]
    assert ev.best == max(scores)
