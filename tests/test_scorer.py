"""The evidence scorer: features, the committed parameters, and the fit."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from assistant.answering.scorer import (
    FEATURES,
    PARAMS_PATH,
    PIECE_FEATURES,
    DocFreqTermStats,
    EvidenceModel,
    PaperSentences,
    QueryPieces,
    content_pieces,
    feature_matrix,
    fit_logistic,
    load_model,
    profile,
    score_papers,
)
from assistant.index.embed import Pieces
from tests.hits import one_paper_hit

STATS = DocFreqTermStats.from_texts(
    [
        "B4 is a code generation method based on Bayesian priors.",
        "We study code generation with large language models.",
        "Language models write code from natural language.",
        "A survey of program synthesis benchmarks.",
    ]
)


def _unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def _paper(sentences: list[str], vectors: list[np.ndarray], title: str = "A paper", score: float = 1.0) -> PaperSentences:
    return PaperSentences("p", title, score, 0.5, tuple(sentences), np.vstack(vectors))


def test_committed_parameters_load_and_are_small() -> None:
    assert PARAMS_PATH.stat().st_size < 100 * 1024
    model = load_model()
    assert model.features == FEATURES
    assert 0.0 < model.refusal_bar < 1.0 and 0.0 < model.cite_bar < 1.0
    provenance = json.loads(PARAMS_PATH.read_text())["provenance"]
    assert provenance["command"].startswith("python -m evals.fit_evidence")


def test_probabilities_are_in_range_and_rise_with_similarity() -> None:
    model = load_model()
    question = "Is it true that code generation benefits from priors?"
    q = _unit([1.0, 0.0, 0.0])
    probs = []
    for angle in np.linspace(1.4, 0.0, 8):  # the first sentence turns towards the question
        near = _unit([float(np.cos(angle)), float(np.sin(angle)), 0.0])
        paper = _paper(["We study code generation.", "Results are reported."], [near, _unit([0.3, 0.0, 1.0])])
        probs.append(float(score_papers(model, question, q, [paper], STATS)[0][0]))
    assert all(0.0 <= p <= 1.0 for p in probs)
    assert all(b >= a for a, b in itertools.pairwise(probs)) and probs[-1] > probs[0]


def test_rare_term_fires_only_on_a_sentence_holding_it() -> None:
    q = _unit([1.0, 0.0])
    paper = _paper(
        ["B4 is a code generation method.", "We tailor code generation tasks."], [_unit([1.0, 0.2]), _unit([1.0, 0.2])]
    )
    x = feature_matrix("What is B4?", q, [paper], STATS)
    rare = FEATURES.index("rare_term")
    assert x[0, rare] > 0.5
    assert x[1, rare] == 0.0
    assert x[1, FEATURES.index("rare_missing")] > 0.5
    assert x[0, FEATURES.index("defines")] == 1.0 and x[1, FEATURES.index("defines")] == 0.0


def test_a_name_in_the_title_counts_and_a_capitalised_first_word_does_not() -> None:
    q = _unit([1.0, 0.0])
    paper = _paper(["We tailor code generation tasks."], [_unit([1.0, 0.0])], title="B4: Towards optimal code")
    x = feature_matrix("What is B4?", q, [paper], STATS)
    assert x[0, FEATURES.index("rare_term")] > 0.5
    assert [name for name, _ in profile("What does Which mean here?", STATS).names] == []


def test_answer_type_needs_the_kind_of_thing_asked_for() -> None:
    q = _unit([1.0, 0.0])
    paper = _paper(["The model has 41 billion parameters.", "The model writes code."], [_unit([1.0, 0.0])] * 2)
    x = feature_matrix("How many parameters does the largest model have?", q, [paper], STATS)
    assert list(x[:, FEATURES.index("number_match")]) == [1.0, 0.0]
    assert list(x[:, FEATURES.index("number_missing")]) == [0.0, 1.0]
    assert profile("Is it true that priors help?", STATS).asks_number is False
    assert profile("Which dataset do they evaluate on?", STATS).asks_name is True


def test_gaps_are_relative_to_the_best_candidate() -> None:
    q = _unit([1.0, 0.0])
    best = _paper(["Close."], [_unit([1.0, 0.1])], score=1.0)
    other = _paper(["Far."], [_unit([0.2, 1.0])], score=0.4)
    x = feature_matrix("Is it true that things are close?", q, [best, other], STATS)
    gap = FEATURES.index("cosine_gap")
    assert x[0, gap] == pytest.approx(0.0) and x[1, gap] < -0.5
    assert x[1, FEATURES.index("paper_gap")] == pytest.approx(-0.6)
    assert x[1, FEATURES.index("paper_rank")] == pytest.approx(0.5)


def test_fit_recovers_the_signs_on_separable_data() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (2.0 * x[:, 0] - 1.5 * x[:, 1] > 0).astype(float)
    model = fit_logistic(x, y, l2=1.0, features=("up", "down", "noise"))
    assert model.weights[0] > 1.0 and model.weights[1] < -1.0
    assert abs(model.weights[2]) < 0.5 * min(abs(model.weights[0]), abs(model.weights[1]))
    p = model.probability(x)
    assert ((p > 0.5) == (y == 1)).mean() > 0.97


def test_parameters_for_other_features_are_refused() -> None:
    data = load_model().to_dict()
    assert EvidenceModel.from_dict(data).features == FEATURES
    with pytest.raises(ValueError, match="refit"):
        EvidenceModel.from_dict({**data, "features": ["cosine"]}, "params.json")
    with pytest.raises(ValueError, match=r"params\.json: bad or missing field"):
        EvidenceModel.from_dict({"features": list(FEATURES)}, "params.json")


def test_rarity_is_one_for_an_unseen_stem_and_zero_for_a_stem_everywhere() -> None:
    stats = DocFreqTermStats({"code": 4}, 4)
    assert stats.idf("unseen") == pytest.approx(1.0)
    assert stats.idf("code") == pytest.approx(0.0)


def test_cite_ratio_round_trips_and_defaults_to_zero() -> None:
    data = load_model().to_dict()
    assert EvidenceModel.from_dict({**data, "cite_ratio": 0.3}).cite_ratio == 0.3
    older = {k: v for k, v in data.items() if k != "cite_ratio"}  # parameter files written before the ratio
    assert EvidenceModel.from_dict(older).cite_ratio == 0.0


def test_passing_applies_the_bar_and_the_share_of_the_best_paper() -> None:
    from assistant.answering.strategies import passing
    from assistant.models import Evidence

    pool = [Evidence(p, p, "", 0.0, (), best=b) for p, b in (("b", 0.3), ("a", 0.9), ("c", 0.05), ("d", 0.2))]
    assert [e.paper_id for e in passing(pool, 0.1)] == ["a", "b", "d"]
    assert [e.paper_id for e in passing(pool, 0.1, ratio=0.3)] == ["a", "b"]  # 0.2 < 0.3 * 0.9
    assert [e.paper_id for e in passing(pool, 0.95, ratio=0.5)] == ["a"]  # the best paper always


def test_a_stored_bar_never_rounds_up_past_the_question_it_must_pass() -> None:
    # A fitted bar sits on an answerable question's probability; rounded up, it refused that question.
    fitted = fit_logistic(np.asarray([[0.0], [1.0], [2.0], [3.0]]), np.asarray([0, 0, 1, 1]), features=("cosine",))
    stored = replace(fitted, refusal_bar=0.0377065, cite_bar=0.0893759).to_dict()
    assert stored["refusal_bar"] == 0.037706 <= 0.0377065
    assert stored["cite_bar"] == 0.089375


def _pieces(rows: list[list[float]]) -> np.ndarray:
    return np.vstack([_unit(r) for r in rows]).astype(np.float16)


def test_word_piece_features_match_pieces_in_context() -> None:
    """A sentence holding both question pieces scores higher than one holding one; the gaps are to the best."""
    q = _unit([1.0, 0.0, 0.0, 0.0])
    asked = QueryPieces(_pieces([[1, 0, 0, 0], [0, 1, 0, 0]]).astype(np.float32), bar=0.8)
    both = _pieces([[1, 0, 0, 0.1], [0, 1, 0, 0.1], [0, 0, 1, 0]])
    one = _pieces([[1, 0, 0, 0.1], [0, 0.5, 1, 0]])
    paper = replace(_paper(["Both.", "One."], [q, q]), pieces=(both, one))
    x = feature_matrix("Is it true that a b?", q, [paper], STATS, asked)
    match, share = FEATURES.index("piece_match"), FEATURES.index("piece_share")
    assert x[0, share] == pytest.approx(1.0) and x[1, share] == pytest.approx(0.5)
    assert x[0, match] > x[1, match] > 0.5
    assert x[0, FEATURES.index("piece_share_gap")] == 0.0 and x[1, FEATURES.index("piece_share_gap")] == pytest.approx(-0.5)
    assert x[1, FEATURES.index("piece_match_gap")] == pytest.approx(x[1, match] - x[0, match])


def test_without_word_pieces_the_features_count_at_their_mean() -> None:
    """A remote embedder gives no word pieces: those features are NaN and move no probability."""
    model = load_model()
    q = _unit([1.0, 0.0, 0.0])
    paper = _paper(["We study code generation.", "Results are reported."], [_unit([1.0, 0.2, 0.0]), _unit([0.3, 0.0, 1.0])])
    x = feature_matrix("Is it true that code generation benefits from priors?", q, [paper], STATS)
    assert np.isnan(x[:, [FEATURES.index(f) for f in PIECE_FEATURES]]).all()
    at_mean = x.copy()
    for f in PIECE_FEATURES:
        at_mean[:, FEATURES.index(f)] = model.mean[FEATURES.index(f)]
    assert np.allclose(model.probability(x), model.probability(at_mean))
    assert model.piece_bar is not None and 0.5 < model.piece_bar < 1.0
    assert EvidenceModel.from_dict(model.to_dict()).piece_bar == model.piece_bar


def test_content_pieces_drop_stopwords_and_punctuation() -> None:
    rows = np.eye(6, dtype=np.float32)
    kept = content_pieces(("what", "is", "b", "##4", "?", "optimizer"), rows)
    assert kept.shape == (3, 6) and kept[:, 2].sum() == 1 and kept[:, 3].sum() == 1 and kept[:, 5].sum() == 1


class _CountingPieces:
    """The real local embedder, counting which texts pass through the model."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return list(self.inner.embed(texts))

    def embed_query(self, text: str) -> list[float]:
        self.texts.append(text)
        return list(self.inner.embed_query(text))

    def embed_with_pieces(self, texts: Sequence[str]) -> tuple[list[list[float]], list[Pieces]]:
        self.texts.extend(texts)
        return self.inner.embed_with_pieces(texts)


@pytest.mark.slow
def test_a_question_is_embedded_once_for_its_vector_and_its_word_pieces(embedder: Any) -> None:
    from assistant.answering.evidence import EvidenceBuilder

    abstract = "B4 scores plausible code solutions with plausible tests. It beats the best heuristic by 50%."
    hit = one_paper_hit(abstract, "B4")
    counting = _CountingPieces(embedder)
    builder = EvidenceBuilder(counting, DocFreqTermStats.from_texts([abstract]), sentences=2)
    question = "What is B4?"
    vector = builder.embed_question(question)
    assert np.allclose(vector, embedder.embed_query(question), atol=1e-6)
    [ev] = builder.build(question, [hit], vector)
    assert counting.texts.count(question) == 1  # the scoring reused the pieces of the pass that gave the vector
    assert ev.best > 0


def test_a_number_in_words_is_a_number_and_one_is_not() -> None:
    from assistant.answering.scorer import has_number

    assert has_number("experiments across over twenty different sub-tasks")
    assert has_number("dozens of benchmarks") and has_number("It has 7B parameters.")
    assert not has_number("one of the first methods to double its speed")
