"""What is decided before generation starts: the request and the plan built from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

from assistant.errors import InputError
from assistant.models import Evidence, Filters, Mode, PaperHit, Sentence

CompareRow = tuple[Evidence, dict[str, Sentence | None]]
Theme = tuple[str, list[int]]


class AskOptions(TypedDict, total=False):
    """The keyword options of `Assistant.stream`, `plan` and `ask`."""

    mode: str | None  # ask, compare, summarise, or None/"auto" to detect it from the wording
    history: Sequence[str]  # earlier user turns, oldest first
    filters: Filters | None
    top_k: int | None  # papers for ask and compare; the setting when None


@dataclass(frozen=True)
class Request:
    """One question and how it is to be answered."""

    question: str
    mode: str | None = None
    history: tuple[str, ...] = ()
    filters: Filters | None = None
    top_k: int | None = None

    @classmethod
    def of(cls, question: str, options: AskOptions) -> Request:
        """The request, refusing an empty question with one line."""
        if not question or not question.strip():
            raise InputError("question is empty")
        return cls(question, options.get("mode"), tuple(options.get("history", ())), options.get("filters"), options.get("top_k"))


@dataclass(frozen=True)
class Plan:
    """Everything decided before generation starts."""

    question: str
    standalone: str
    mode: Mode
    hits: tuple[PaperHit, ...]
    evidence: tuple[Evidence, ...]
    refused: bool
    reason: str
    rows: tuple[CompareRow, ...]
    table: tuple[dict[str, str], ...]
    themes: tuple[Theme, ...]
    retrieval_seconds: float
    beyond_cap: tuple[str, ...] = ()  # titles of relevant papers a summary had no room for
    missing: tuple[str, ...] = ()  # names in a comparison that no paper in the collection matches
    cite_bar: float | None = None  # a claim check's own citation bar; None: the evidence model's
    cite_ratio: float = 0.0  # a claim check's: a cited paper's best sentence reaches this share of the best paper's
