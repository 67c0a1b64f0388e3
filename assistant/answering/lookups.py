"""Whether the closest abstract states what a question asks for: one probability per question, for direct answers.

The evidence model scores sentences; its refusal bar refuses only when no sentence comes close. A near miss ("How many
parameters does CoEdIT have?": the paper is there, the number is not) has a close sentence about the right paper, so
that bar lets it through. This model reads the question against the best paper as a whole: is what the question names
in that abstract, is the measure it asks for ("parameters", "learning rate") anywhere in it, does the best sentence
hold a figure when a figure is asked for. Logistic regression over these, fitted on our labelled questions by
`python -m evals.fit_lookups` with its refusal bar (the one at which it and the evidence bar together make the fewest
expected mistakes). Pure: it reads the evidence and the collection's term statistics.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from assistant.answering.answerability import logit
from assistant.answering.asking import profile
from assistant.answering.scorer import EvidenceModel, TermStats, has_number, holds_token
from assistant.models import Evidence
from assistant.text.words import STOPWORDS, stems, words

LOOKUP_PARAMS_PATH = Path(__file__).with_name("lookup_params.json")

# One line per feature: what tells a question the best abstract answers from one it only comes close to.
LOOKUP_FEATURES: tuple[str, ...] = (
    "best",  # log-odds of the best sentence: the evidence model's own verdict
    "second_paper",  # log-odds of the runner-up paper's best sentence: a near miss often has no second source either
    "name_absent_paper",  # rarity of a name-like question token nowhere in the best paper: it is about another X
    "name_absent_sentence",  # ... nowhere in the best sentence or the title
    "measure_absent_paper",  # the number or name asked for ("parameters") is not what the best paper ever measures
    "measure_absent_sentence",  # ... nor what its best sentence names
    "number_absent",  # a figure is asked for and the best sentence holds none
    "stems_absent_paper",  # rarity-weighted share of the question's stems missing from the best paper
    "stems_absent_sentence",  # ... missing from the best sentence and the title
)

# The words after "how many", "what" or "which": the thing asked for ("parameters", "learning rate").
_ASKED = re.compile(r"\b(?:how (?:many|much)|what|which)\s+(.*)", re.IGNORECASE)


def measure(question: str) -> frozenset[str]:
    """Stems of the (at most two) content words after "how many", "what" or "which", up to the first stopword:
    "What learning rate was used ..." -> {learn, rate}."""
    match = _ASKED.search(question)
    if not match:
        return frozenset()
    asked: list[str] = []
    for word in words(match.group(1)):
        if word in STOPWORDS and asked:
            break
        if word not in STOPWORDS:
            asked.append(word)
        if len(asked) == 2:
            break
    return frozenset(stems(" ".join(asked)))


def lookup_features(question: str, evidence: Sequence[Evidence], stats: TermStats) -> np.ndarray:
    """LOOKUP_FEATURES of one question against its retrieved papers' evidence (any order)."""
    ranked = sorted(evidence, key=lambda e: -e.best)
    if not ranked:
        return np.asarray([logit(0.0), logit(0.0), 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    top = ranked[0]
    # The quoted sentence most probably answering (quotes are in the quote ranker's order, not by probability).
    sentence = max(top.sentences, key=lambda s: s.score).text if top.sentences else ""
    paper = f"{top.title} {top.abstract}"
    q = profile(question, stats)
    asked = measure(question) if q.asks_number or q.asks_name else frozenset()
    paper_stems, sentence_stems = stems(paper), stems(sentence) | stems(top.title)
    total = sum(q.weights.values()) or 1.0
    return np.asarray(
        [
            logit(top.best),
            logit(ranked[1].best) if len(ranked) > 1 else logit(0.0),
            max((w for tok, w in q.names if not holds_token(tok, paper)), default=0.0),
            max((w for tok, w in q.names if not (holds_token(tok, sentence) or holds_token(tok, top.title))), default=0.0),
            float(bool(asked) and not asked & paper_stems),
            float(bool(asked) and not asked & stems(sentence)),
            float(q.asks_number and not has_number(sentence)),
            sum(w for s, w in q.weights.items() if s not in paper_stems) / total,
            sum(w for s, w in q.weights.items() if s not in sentence_stems) / total,
        ]
    )


@lru_cache(maxsize=2)
def load_lookup_model(path: Path = LOOKUP_PARAMS_PATH) -> EvidenceModel | None:
    """The fitted model with its refusal bar, or None when no file was fitted (direct answers then use the evidence
    model's bar alone)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the lookup model ({exc}); run python -m evals.fit_lookups --write") from None
    return EvidenceModel.from_dict(data.get("model", {}), str(path), LOOKUP_FEATURES)
