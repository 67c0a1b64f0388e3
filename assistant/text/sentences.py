"""Sentence spans and word tokens shared by chunking, evidence and citation checking."""

from __future__ import annotations

import re

# llama-index's sentence splitters return strings without offsets; citations need exact spans.
_BOUNDARY = re.compile(r"""[.!?]+["'”’)\]]*\s+(?=["'“‘(\[]?[A-Z0-9])""")
_ABBREV = re.compile(
    r"(?:\b(?:e\.g|i\.e|et al|vs|cf|fig|figs|eq|eqs|sec|no|approx|resp|dr|mr|ms|prof|st|etc|al|inc|ca)\.|\b[A-Z]\.)$",
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z0-9]+(?:[-'][A-Za-z0-9]+)*")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "being",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "our",
        "over",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "under",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "within",
        "without",
        "would",
        "you",
        "your",
        "paper",
        "papers",
        "work",
        "works",
        "study",
        "studies",
        "approach",
        "method",
        "methods",
        "propose",
        "proposes",
        "proposed",
        "present",
        "presents",
        "show",
        "shows",
        "using",
        "use",
        "used",
        "based",
        "also",
        "both",
        "between",
        "each",
        "more",
        "most",
        "other",
        "some",
        "new",
    ]
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in `text`, trimmed of surrounding whitespace."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if text[match.start()] == "." and _ABBREV.search(text, max(start, match.start() - 16), match.start() + 1):
            continue
        end = match.end()
        seg = text[start:end]
        if seg.strip():
            s = start + (len(seg) - len(seg.lstrip()))
            spans.append((s, start + len(seg.rstrip())))
        start = end
    tail = text[start:]
    if tail.strip():
        s = start + (len(tail) - len(tail.lstrip()))
        spans.append((s, start + len(tail.rstrip())))
    return spans


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return [w.lower() for w in _WORD.findall(text)]


def content_words(text: str) -> list[str]:
    """Lower-cased word tokens without stopwords or one-letter words."""
    return [w for w in words(text) if len(w) > 1 and w not in STOPWORDS]
