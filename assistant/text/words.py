"""Word tokens, stopwords and stems: the one tokenizer and stemmer every stage shares."""

from __future__ import annotations

import re
import threading
from typing import Any

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

# A Snowball stemmer object is not safe to share between threads (the app answers several sessions at once).
_local = threading.local()


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return [w.lower() for w in _WORD.findall(text)]


def content_words(text: str) -> list[str]:
    """Lower-cased word tokens without stopwords or one-letter words."""
    return [w for w in words(text) if len(w) > 1 and w not in STOPWORDS]


def stemmer() -> Any:
    """The English Snowball stemmer of this thread (BM25's index and lexical overlap share it): building one costs more
    than stemming a query."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def stems(text: str) -> set[str]:
    """Stemmed content words, for lexical overlap."""
    return set(stemmer().stemWords(content_words(text)))
