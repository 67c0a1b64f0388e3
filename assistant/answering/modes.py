"""Which kind of answer a question wants: ask, compare or summarise."""

from __future__ import annotations

import re

from assistant.models import Mode

_COMPARE = re.compile(
    r"\b(compare[sd]?|comparison|comparing|contrast|differ(s|ence|ences|ently)?|versus|vs\.?|"
    r"both|each|relate[sd]? to|how do .+ and .+|similarit(y|ies)|trade-?offs?)\b",
    re.IGNORECASE,
)
_SUMMARISE = re.compile(
    r"\b(summari[sz]e|summary|overview|survey|what does (the|this) collection say|"
    r"across the collection|which (papers|benchmarks|works|methods)|"
    r"landscape|themes?|review)\b",
    re.IGNORECASE,
)
MODES: tuple[Mode, ...] = ("ask", "compare", "summarise")


def detect_mode(question: str) -> Mode:
    """Guess the mode from the wording; summaries win over comparisons when both match."""
    if _SUMMARISE.search(question):
        return "summarise"
    if _COMPARE.search(question):
        return "compare"
    return "ask"


def resolve_mode(question: str, requested: str | None) -> Mode:
    """The user's explicit mode, or the detected one for None/'auto'."""
    for mode in MODES:
        if requested == mode:
            return mode
    if requested not in (None, "", "auto"):
        raise ValueError(f"unknown mode {requested!r}; use auto, ask, compare or summarise")
    return detect_mode(question)
