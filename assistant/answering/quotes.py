"""Which sentences of an answering paper are quoted first: the quote ranker fitted beside the evidence scorer.

The scorer's probability says whether a sentence answers, across papers (it decides citing and refusing); the ranker
only orders one abstract's sentences, and is fitted for that alone (`evals.quote_cv`): held out, a gold sentence is
among its first three on SciFact more often than among the scorer's (0.905 against 0.886), as often on our questions.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from assistant.answering.scorer import PARAMS_PATH, EvidenceModel

QUOTES_KEY = "quotes"


@lru_cache(maxsize=4)
def load_quote_model(path: Path = PARAMS_PATH) -> EvidenceModel | None:
    """The fitted quote ranker, or None when the file has none (quotes then follow the scorer's probability)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8")).get(QUOTES_KEY)
    except (OSError, ValueError):
        return None
    return EvidenceModel.from_dict(data, f"{path} ({QUOTES_KEY})") if data else None
