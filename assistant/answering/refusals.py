"""The one refusal detector: the refusal the prompt prescribes, and sentences saying the sources lack something."""

from __future__ import annotations

import re

REFUSAL = "The collection does not answer this question."

_NEGATION = (
    r"(?:do|does|did|could|can)(?:n't| not)|cannot|no information"
    r"|not (?:mention|cover|discuss|address|report|say|provide|contain)"
)
_SOURCES = r"collection|corpus|papers?|sources?|abstracts?|evidence|context|documents?|provided"
_PHRASE = re.compile(
    rf"^(?:i(?:'m| am)? (?:sorry|cannot|can't|could not|couldn't|do not|don't)|sorry\b|there is no|none of the"
    rf"|no (?:{_SOURCES})\b)"
    rf"|\b(?:the|these|those|provided|retrieved|given|available|any)\s+(?:{_SOURCES})\b.{{0,200}}?\b{_NEGATION}"
    r"|\bnot (?:covered|stated|mentioned) in the (?:collection|sources)\b|\b(?:does not|doesn't|do not|cannot|can't) answer\b",
    re.IGNORECASE,
)
_HEAD = 300  # a refusal says so at once; a long answer that mentions a gap is still an answer
_CITED_HEAD = 120


def is_refusal(sentence: str) -> bool:
    """Whether a sentence says the sources do not answer, rather than claiming something that needs a citation."""
    return bool(_PHRASE.search(sentence.strip()))


def looks_refused(text: str) -> bool:
    """Whether a whole answer is a refusal: the prescribed one, or a short uncited opening that refuses."""
    head = text.strip()[:_HEAD]
    return head.startswith(REFUSAL[:30]) or (len(head) < _HEAD and "[" not in head[:_CITED_HEAD] and is_refusal(head))
