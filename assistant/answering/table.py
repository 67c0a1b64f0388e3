"""The compare-mode evidence table: what each paper does, on what, with what result."""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.models import Sentence

NOT_STATED = "not stated"
COLUMNS = ("What it does", "Evaluated on", "Result")  # the default columns, when the question names no aspect
_PATTERNS = {
    COLUMNS[0]: re.compile(
        r"\b(we (propose|present|introduce|develop|design|describe|study|explore|investigate)|"
        r"this (paper|work|survey|study) (proposes|presents|introduces|describes|explores)|(is|as) a (novel|new)|called)\b",
        re.IGNORECASE,
    ),
    COLUMNS[1]: re.compile(
        r"\b(benchmarks?|datasets?|evaluat\w*|experiments?|tasks?|tested|trained on|measured)\b", re.IGNORECASE
    ),
    COLUMNS[2]: re.compile(
        r"(\d+(\.\d+)?\s?(%|x|×)|\b(outperform\w*|improv\w*|achiev\w*|surpass\w*|state-of-the-art|better than|"
        r"speed-?ups?|reduc\w*|gains?|competitive)\b)",
        re.IGNORECASE,
    ),
}


def classify(sentences: Sequence[Sentence]) -> dict[str, Sentence | None]:
    """For each column, the most relevant sentence that matches it (each sentence used once)."""
    chosen: dict[str, Sentence | None] = {}
    used: set[int] = set()
    ranked = sorted(sentences, key=lambda s: -s.score)
    for column in COLUMNS:
        pick = next((s for s in ranked if s.start not in used and _PATTERNS[column].search(s.text)), None)
        if pick is None and column == COLUMNS[0] and ranked:
            pick = next((s for s in ranked if s.start not in used), None)
        if pick is not None:
            used.add(pick.start)
        chosen[column] = pick
    return chosen
