"""Turning a follow-up question into a standalone one."""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.text.words import content_words

_DEPENDENT = re.compile(
    r"\b(it|its|it's|they|them|their|theirs|this|that|these|those|both|either|neither|former|latter|"
    r"the (paper|method|model|approach|system|study|work|authors|dataset|benchmark)s?|he|she|his|her)\b|"
    r"^\s*(and|also|what about|how about|so|then)\b",
    re.IGNORECASE,
)


def needs_context(question: str) -> bool:
    """Whether a question leans on earlier turns (pronouns, 'and ...', or very short)."""
    return bool(_DEPENDENT.search(question)) or len(content_words(question)) < 3


def offline_rewrite(question: str, history: Sequence[str]) -> str:
    """Prefix the earlier user turns when the question depends on them; BM25 and dense search both use the words."""
    if not history or not needs_context(question):
        return question
    context = " ".join(h.strip() for h in history[-3:] if h.strip())
    return f"{context} {question}".strip()


def accept_rewrite(candidate: str, question: str) -> bool:
    """Whether an LLM's rewrite looks like a question and not a ramble."""
    text = candidate.strip()
    return 3 <= len(text) <= max(400, 4 * len(question)) and "\n\n" not in text
