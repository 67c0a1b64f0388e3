"""The evidence scorer: a calibrated probability that one abstract sentence answers the question.

Pure: it receives the question's vector, each candidate paper's sentences with their vectors, and the
collection's term statistics; it never calls a model or a store. The weights are fitted by
`python -m evals.fit_evidence` and committed in scorer_params.json beside this module.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from assistant import vectors as vec
from assistant.answering.asking import NAME_TOKEN, QuestionProfile, is_name, profile
from assistant.text.words import STOPWORDS, stems, words

PARAMS_PATH = Path(__file__).with_name("scorer_params.json")

# One line per feature: why it can tell an answering sentence from a merely related one.
FEATURES: tuple[str, ...] = (
    "cosine",  # dense similarity of sentence and question: the main topical signal
    "cosine_gap",  # cosine minus the best candidate's: relevance is relative to what the collection offers
    "lexical",  # share of the question's rarity-weighted stems in the sentence: exact terms dense vectors blur
    "lexical_gap",  # lexical minus the best candidate's, as for cosine
    "rare_term",  # rarity of the rarest name-like question token (B4, GPT-4) found verbatim: names identify papers
    "rare_missing",  # rarity of the rarest name-like question token in neither sentence nor title: a different subject
    "paper_dense",  # the paper's best-chunk cosine: an absolute topical match, comparable across questions
    "paper_gap",  # fused retrieval score minus the best paper's: papers far below the best rarely answer
    "paper_rank",  # 1 / (1 + rank) of the paper: retrieval order beyond the score gap
    "paper_gap_cosine",  # cosine minus its own paper's best: one abstract usually states the answer once
    "paper_cosine",  # the paper's best sentence cosine: how well the paper as a whole can answer
    "paper_lexical",  # rarity-weighted share of question stems anywhere in title and abstract: details the paper lacks
    "position",  # relative position in the abstract: results sit late, background early
    "first",  # the opening sentence is often background or the title restated
    "boilerplate",  # code/data availability, URLs, paper organisation, contribution lists: never an answer
    "finding",  # states a result (we show, was associated with, significantly): answers are findings, not background
    "numeric",  # holds a number: results are reported with figures
    "number_match",  # the question asks for a quantity and the sentence holds a number
    "number_missing",  # the question asks for a quantity and the sentence holds none: a topic match is not enough
    "name_match",  # the question asks for a named thing (dataset, model) and the sentence holds a name-like token
    "name_missing",  # it asks for one and the sentence holds none
    "defines",  # a "what is X" question and a sentence that introduces X ("X, a ...", "we propose X")
    "piece_match",  # mean best cosine of each question word piece with the sentence's (MaxSim): terms in context
    "piece_share",  # share of question word pieces matched at the fitted piece bar or above: said near-verbatim
    "piece_match_gap",  # piece_match minus the best candidate's
    "piece_share_gap",  # piece_share minus the best candidate's
)
# The word-piece features, NaN when the embedder gives no word-piece vectors (a remote endpoint): the model then
# scores them at their training mean, so they move no probability.
PIECE_FEATURES = FEATURES[-4:]


class TermStats(Protocol):
    """How rare a stem is in the collection."""

    def idf(self, stem: str) -> float:
        """Rarity in [0, 1]: 1 for a stem in no document, 0 for one in every document."""
        ...


class DocFreqTermStats:
    """Rarity from document frequencies: log((N + 1) / (df + 1)) / log(N + 1), so it means the same for any N."""

    def __init__(self, doc_freq: Mapping[str, int], n_docs: int) -> None:
        self.doc_freq = dict(doc_freq)
        self.n_docs = max(n_docs, 1)
        self._norm = math.log(self.n_docs + 1)

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> DocFreqTermStats:
        """Document frequencies of the stems of each text."""
        df: dict[str, int] = {}
        n = 0
        for text in texts:
            n += 1
            for s in stems(text):
                df[s] = df.get(s, 0) + 1
        return cls(df, n)

    def idf(self, stem: str) -> float:
        df = min(self.doc_freq.get(stem, 0), self.n_docs)
        return math.log((self.n_docs + 1) / (df + 1)) / self._norm


@dataclass(frozen=True)
class PaperSentences:
    """One retrieved paper as the scorer sees it: retrieval scores, sentences and their vectors (rows)."""

    paper_id: str
    title: str
    score: float
    dense: float
    sentences: tuple[str, ...]
    vectors: np.ndarray
    pieces: tuple[np.ndarray, ...] | None = None  # each sentence's word-piece vectors (unit rows), when the embedder has them


# -- sentence features ------------------------------------------------------------------------------

# Cardinals only: "one", "half" and "double" are more often not a count ("one of", "double bonds").
_NUMBER_WORDS = frozenset(
    [
        "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen",
        "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "thirty", "forty", "fifty",
        "sixty", "seventy", "eighty", "ninety", "dozen", "dozens", "hundred", "hundreds", "thousand", "thousands",
        "million", "millions", "billion", "billions", "percent",
    ]
)  # fmt: skip
_FINDING = re.compile(
    r"\b(?:we (?:show|find|found|demonstrate|observe|report)|results? (?:show|suggest|indicate)|(?:was|were|is|are) "
    r"(?:associated|correlated|linked)|significantly|outperform\w*|improv\w+|increas\w+|decreas\w+|reduc\w+)\b",
    re.IGNORECASE,
)
_BOILERPLATE = re.compile(
    r"https?://|www\.|github|\b(?:code|data|dataset|models?|implementation)s?\b[^.]{0,40}\b(?:publicly |freely )?"
    r"(?:available|released)|\bthis (?:paper|article) is organi[sz]ed|\bcontributions?\b|\bwe release\b",
    re.IGNORECASE,
)


def is_boilerplate(sentence: str) -> bool:
    """Code or data availability, a URL, the paper's organisation or its list of contributions: never an answer."""
    return _BOILERPLATE.search(sentence) is not None


def holds_token(token: str, text: str) -> bool:
    """The token stands in the text as a whole word (B4 in "B4 is", not in "B4x")."""
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(token)}(?![A-Za-z0-9])", text) is not None


def has_number(sentence: str) -> bool:
    """A digit, or a number word."""
    return any(ch.isdigit() for ch in sentence) or bool(_NUMBER_WORDS & set(words(sentence)))


def has_name(sentence: str) -> bool:
    """A name-like token after the sentence's first word."""
    return any(is_name(t) for t in NAME_TOKEN.findall(sentence)[1:])


def defines(term: str, sentence: str) -> bool:
    """The sentence introduces `term`: "X, a", "X is", "X (", "we propose/introduce X", "called X"."""
    t = re.escape(term)
    after = rf"(?<![A-Za-z0-9]){t}(?:,| is\b| are\b| \(|:)"
    before = rf"\b(?:propose|proposes|introduce|introduces|present|presents|called|named|dubbed|termed)\s+(?:\w+\s+){{0,2}}{t}\b"
    return re.search(after, sentence) is not None or re.search(before, sentence) is not None


def content_pieces(tokens: Sequence[str], rows: np.ndarray) -> np.ndarray:
    """The question's word pieces worth matching: words that are not stopwords, and word continuations ("##4")."""
    keep = [i for i, t in enumerate(tokens) if (t.isalnum() and t.lower() not in STOPWORDS) or t.startswith("##")]
    return np.asarray(rows[keep] if keep else rows, dtype=np.float32)


@dataclass(frozen=True)
class QueryPieces:
    """The question's content word-piece vectors (`content_pieces`) and the cosine at which one counts as matched."""

    vectors: np.ndarray
    bar: float


def _piece_columns(query: QueryPieces | None, paper: PaperSentences) -> np.ndarray:
    """piece_match and piece_share of each of the paper's sentences (NaN without word-piece vectors)."""
    out = np.full((len(paper.sentences), 2), np.nan)
    if query is None or paper.pieces is None or not len(query.vectors):
        return out
    best = vec.best_matches(query.vectors, paper.pieces)  # one row per sentence
    return np.stack([best.mean(axis=1), (best >= query.bar).mean(axis=1)], axis=1)


def lexical(weights: Mapping[str, float], sentence: str) -> float:
    """Rarity-weighted share of the question's stems that the sentence holds."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    found = stems(sentence)
    return sum(w for s, w in weights.items() if s in found) / total


def _sentence_row(q: QuestionProfile, paper: PaperSentences, i: int, cos: float) -> list[float]:
    """Features of one sentence that need nothing from the other candidates (gaps are filled in later)."""
    text = paper.sentences[i]
    n = len(paper.sentences)
    found = [w for tok, w in q.names if holds_token(tok, text) or holds_token(tok, paper.title)]
    missing = [w for tok, w in q.names if not (holds_token(tok, text) or holds_token(tok, paper.title))]
    num, name = has_number(text), has_name(text)
    return [
        cos, 0.0, lexical(q.weights, text), 0.0,
        max(found, default=0.0), max(missing, default=0.0),
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        i / (n - 1) if n > 1 else 0.0, float(i == 0), float(_BOILERPLATE.search(text) is not None),
        float(_FINDING.search(text) is not None), float(num),
        float(q.asks_number and num), float(q.asks_number and not num),
        float(q.asks_name and name), float(q.asks_name and not name),
        float(q.defined is not None and defines(q.defined, text)),
        0.0, 0.0, 0.0, 0.0,
    ]  # fmt: skip


def feature_matrix(
    question: str,
    query_vector: Sequence[float] | np.ndarray,
    papers: Sequence[PaperSentences],
    stats: TermStats,
    query_pieces: QueryPieces | None = None,
) -> np.ndarray:
    """One row of FEATURES per sentence, papers in the given (retrieval) order, sentences in abstract order.

    Without `query_pieces`, or without the papers' `pieces`, the word-piece features are NaN."""
    q = profile(question, stats)
    qv = np.asarray(query_vector, dtype=np.float32)
    rows: list[list[float]] = []
    best_score = max((p.score for p in papers), default=0.0)
    col = FEATURES.index
    for rank, paper in enumerate(papers):
        cos = np.asarray(paper.vectors, dtype=np.float32).reshape(len(paper.sentences), -1) @ qv
        top = float(cos.max(initial=0.0))
        # A paper that only BM25 returned has no chunk cosine: its best sentence's cosine stands in.
        dense = paper.dense if math.isfinite(paper.dense) else top
        whole = lexical(q.weights, paper.title + " " + " ".join(paper.sentences))
        matched = _piece_columns(query_pieces, paper)
        for i in range(len(paper.sentences)):
            row = _sentence_row(q, paper, i, float(cos[i]))
            row[col("paper_dense")] = dense
            row[col("paper_gap")] = paper.score - best_score
            row[col("paper_rank")] = 1.0 / (1 + rank)
            row[col("paper_gap_cosine")] = float(cos[i]) - top
            row[col("paper_cosine")] = top
            row[col("paper_lexical")] = whole
            row[col("piece_match")], row[col("piece_share")] = matched[i]
            rows.append(row)
    x = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))
    if len(x):
        for name in ("cosine", "lexical", "piece_match", "piece_share"):
            top = x[:, col(name)].max()  # NaN for the word-piece columns when they are NaN: the gap is unknown too
            x[:, col(name + "_gap")] = x[:, col(name)] - top
    return x


# -- the model -----------------------------------------------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)))


@dataclass(frozen=True)
class EvidenceModel:
    """Logistic regression on standardised features, with the bars fitted beside it."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    refusal_bar: float = 0.5
    cite_bar: float = 0.5
    cite_ratio: float = 0.0  # a cited paper's best probability must also reach this share of the best paper's
    piece_bar: float | None = None  # the sentence model's: the cosine at which a word piece counts as matched

    def probability(self, x: np.ndarray) -> np.ndarray:
        """P(sentence is evidence) for each row of x (columns in `features` order); a NaN feature counts at its mean."""
        z = np.nan_to_num((np.asarray(x, dtype=np.float64) - self.mean) / self.scale, nan=0.0)
        return _sigmoid(z @ self.weights + self.bias)

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale],
            "weights": [round(float(v), 6) for v in self.weights],
            "bias": round(self.bias, 6),
            "refusal_bar": floor6(self.refusal_bar),
            "cite_bar": floor6(self.cite_bar),
            "cite_ratio": round(self.cite_ratio, 6),
        } | ({"piece_bar": round(self.piece_bar, 6)} if self.piece_bar is not None else {})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "parameters", expected: Sequence[str] = FEATURES) -> EvidenceModel:
        """The model from its saved form; a file fitted for other features than `expected` is refused."""
        try:
            features = tuple(str(f) for f in data["features"])
            arrays = [np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "weights")]
            bias, refusal, cite = float(data["bias"]), float(data["refusal_bar"]), float(data["cite_bar"])
            ratio = float(data.get("cite_ratio", 0.0))
            piece_bar = float(data["piece_bar"]) if data.get("piece_bar") is not None else None
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: bad or missing field {exc}") from None
        if features != tuple(expected):
            raise ValueError(f"{source}: fitted for features {list(features)}, this code computes {list(expected)}; refit")
        if any(a.shape != (len(features),) for a in arrays):
            raise ValueError(f"{source}: mean, scale and weights need {len(features)} values each")
        return cls(features, arrays[0], arrays[1], arrays[2], bias, refusal, cite, ratio, piece_bar)


def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float = 1.0, sample_weight: np.ndarray | None = None, features: Sequence[str] = FEATURES
) -> EvidenceModel:
    """L2-regularised logistic regression by Newton's method on standardised features (the bias is not penalised)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(features) or len(x) != len(y):
        raise ValueError(f"fit_logistic: x is {x.shape}, y has {len(y)} labels, {len(features)} features named")
    y = np.asarray(y, dtype=np.float64)
    sw = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0  # a constant feature keeps weight 0 instead of dividing by zero
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(100):  # Newton converges in well under 20 steps on standardised features
        p = _sigmoid(z @ w)
        grad = z.T @ (sw * (p - y)) + penalty * w
        hess = (z * (sw * p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return EvidenceModel(tuple(features), mean, scale, w[:-1].copy(), float(w[-1]))


def floor6(bar: float) -> float:
    """A bar stored to six decimals, rounded down: a fitted bar sits on the score of a question it must still pass
    (refused below the bar, cited from it up), and rounding up would turn that question away."""
    return math.floor(bar * 1e6) / 1e6


@lru_cache(maxsize=4)
def load_model(path: Path = PARAMS_PATH) -> EvidenceModel:
    """The committed model (cached); a clear error names the file when it is missing or malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: evidence scorer parameters not found; run python -m evals.fit_evidence") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    return EvidenceModel.from_dict(data.get("model", {}), str(path))


@lru_cache(maxsize=4)
def load_summary_bars(path: Path = PARAMS_PATH) -> tuple[float, float]:
    """A summary's bars (`python -m evals.fit_summary`): the share of the best paper's retrieval score a paper needs to
    enter it, and the best sentence probability below which it is refused."""
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))["summary"]
        return float(summary["bar"]), float(summary["refusal_bar"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{path}: no fitted summary bars; run python -m evals.fit_summary FILES --write") from None


def score_papers(
    model: EvidenceModel,
    question: str,
    query_vector: Sequence[float] | np.ndarray,
    papers: Sequence[PaperSentences],
    stats: TermStats,
) -> list[np.ndarray]:
    """Each paper's sentence probabilities, in abstract order."""
    return split_by_paper(model.probability(feature_matrix(question, query_vector, papers, stats)), papers)


def split_by_paper(probs: np.ndarray, papers: Sequence[PaperSentences]) -> list[np.ndarray]:
    """Per-sentence values of the stacked papers, one array per paper."""
    out, at = [], 0
    for paper in papers:
        out.append(probs[at : at + len(paper.sentences)])
        at += len(paper.sentences)
    return out
