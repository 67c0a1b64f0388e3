"""Whether the retrieved evidence settles a claim check ("Is it true that ...?"): one probability per question.

A claim check is refused when that probability falls below its fitted bar. Its own model, because a claim's near
misses (the paper is there, the asserted detail is not) leave a different trace than a question's: the best sentence
alone separates SciFact's evidence claims from its NEI claims with an AUC of 0.81, these aggregates with 0.86
(`python -m assistant eval fit-evidence`, cross-validated). Pure: it reads the scorer's feature rows and probabilities.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from assistant.answering.scorer import FEATURES, PARAMS_PATH, EvidenceModel

# One line per feature: what about the whole pool tells a settled claim from a near miss.
QUESTION_FEATURES: tuple[str, ...] = (
    "best",  # log-odds of the best sentence: the single strongest piece of evidence
    "second",  # log-odds of the runner-up sentence: evidence is rarely one isolated sentence
    "second_paper",  # log-odds of the best sentence of the runner-up paper: a settled claim often has a second source
    "max_cosine",  # the closest sentence's dense similarity: absolute, not relative to the pool
    "max_lexical",  # the largest share of the claim's rarity-weighted stems in one sentence: the asserted details
    "max_paper_dense",  # the best chunk cosine of any paper: how close the collection comes at all
    "sentences_above",  # sentences with probability over 0.1: near misses have few
    "papers_above",  # papers with a sentence over 0.1
    "best_lexical",  # the best sentence's share of the claim's stems
    "best_cosine",  # the best sentence's dense similarity
    "best_paper_lexical",  # share of the claim's stems anywhere in the best paper: details the abstract lacks
    "best_rare_missing",  # rarity of a name-like token of the claim absent from the best sentence and its title
)

# The phrasings that ask to check a statement rather than ask a question (how `eval claims` asks a SciFact claim).
_CLAIM_CHECK = re.compile(
    r"^\s*(?:is it (?:true|the case|correct|right) that|is there evidence (?:that|for)|"
    r"does (?:the )?(?:evidence|literature|collection) (?:show|support|say) that|(?:check|verify)(?: the claim)?(?: that)?\b|"
    r"true or false\b)",
    re.IGNORECASE,
)
_SURE = 1e-6


def is_claim_check(question: str) -> bool:
    """The question asks whether a stated claim holds."""
    return _CLAIM_CHECK.search(question) is not None


def logit(p: float) -> float:
    p = min(max(p, _SURE), 1.0 - _SURE)
    return float(np.log(p / (1.0 - p)))


def question_features(x: np.ndarray, probs: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """QUESTION_FEATURES of one question, from its sentence rows (FEATURES columns), their probabilities and paper index."""
    if not len(probs):
        return np.asarray([logit(0.0)] * 3 + [0.0] * (len(QUESTION_FEATURES) - 3))
    col = FEATURES.index
    order = np.argsort(-probs, kind="stable")
    best = int(order[0])
    per_paper = np.sort([probs[paper == p].max() for p in np.unique(paper)])[::-1]
    return np.asarray(
        [
            logit(float(probs[best])),
            logit(float(probs[order[1]])) if len(order) > 1 else logit(0.0),
            logit(float(per_paper[1])) if len(per_paper) > 1 else logit(0.0),
            float(x[:, col("cosine")].max()),
            float(x[:, col("lexical")].max()),
            float(x[:, col("paper_dense")].max()),
            float((probs > 0.1).sum()),
            float((per_paper > 0.1).sum()),
            float(x[best, col("lexical")]),
            float(x[best, col("cosine")]),
            float(x[best, col("paper_lexical")]),
            float(x[best, col("rare_missing")]),
        ]
    )


@lru_cache(maxsize=4)
def load_claim_model(path: Path = PARAMS_PATH) -> EvidenceModel | None:
    """The fitted claim-check model (its refusal and cite bars beside it), or None when the file has none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8")).get("claims")
    except (OSError, ValueError):
        return None
    if not data:
        return None
    return EvidenceModel.from_dict(data, f"{path} (claims)", QUESTION_FEATURES)
