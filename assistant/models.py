"""Frozen records that move between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["ask", "compare", "summarise"]
Span = tuple[int, int]


@dataclass(frozen=True)
class Paper:
    """One paper as read from a corpus."""

    id: str
    title: str
    abstract: str
    authors: tuple[str, ...] = ()
    year: int | None = None
    url: str | None = None
    categories: tuple[str, ...] = ()
    source: str | None = None


@dataclass(frozen=True)
class Chunk:
    """A sentence-aligned piece of one abstract; `spans` index into the abstract."""

    paper_id: str
    n: int
    text: str
    spans: tuple[Span, ...]

    @property
    def id(self) -> str:
        return f"{self.paper_id}:{self.n}"


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its scores and the paper metadata stored beside it."""

    chunk_id: str
    paper_id: str
    title: str
    text: str
    score: float
    dense: float | None = None
    lexical: float | None = None
    metadata: dict[str, object] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Sentence:
    """One sentence of an abstract with its character span."""

    text: str
    start: int
    end: int
    score: float = 0.0


@dataclass(frozen=True)
class Evidence:
    """The sentences of one retrieved paper most relevant to the question."""

    paper_id: str
    title: str
    abstract: str
    score: float
    sentences: tuple[Sentence, ...]  # quoted, lead first (quote ranker order); `score`: the probability that it answers
    year: int | None = None
    authors: tuple[str, ...] = ()
    url: str | None = None
    best: float = 0.0  # probability that the paper's best sentence answers the question


@dataclass(frozen=True)
class Citation:
    """A numbered source the answer cites, with the sentences that support it."""

    n: int
    paper_id: str
    title: str
    quotes: tuple[Sentence, ...]


@dataclass(frozen=True)
class Timings:
    """Seconds spent in each stage; `first_token` is None when nothing streamed."""

    retrieval: float = 0.0
    first_token: float | None = None
    total: float = 0.0


@dataclass(frozen=True)
class Usage:
    """Token counts reported by the LLM (zero in extractive mode)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Support:
    """What the citation check made of a generated answer's sentences (headings and code are not sentences)."""

    sentences: int = 0
    supported: int = 0  # cite a source the check accepts
    flagged: int = 0  # unsupported: cite nothing that backs them, or state something substantive uncited


@dataclass(frozen=True)
class Fallback:
    """The extractive evidence shown with a generated answer that is mostly unsupported, and the line saying so."""

    note: str
    text: str
    citations: tuple[Citation, ...]


@dataclass(frozen=True)
class Answer:
    """The checked result of one question."""

    question: str
    standalone_question: str
    mode: Mode
    text: str
    citations: tuple[Citation, ...]
    evidence: tuple[Evidence, ...]
    unsupported: tuple[str, ...] = ()
    unsupported_spans: tuple[tuple[int, int], ...] = ()  # (start, end) of each unsupported claim in `text`
    dropped_citations: tuple[int, ...] = ()
    refused: bool = False
    extractive: bool = False
    incomplete: bool = False
    error: str | None = None
    coverage: str = ""
    left_out: tuple[str, ...] = ()
    table: tuple[dict[str, str], ...] = ()
    usage: Usage = Usage()
    timings: Timings = Timings()
    support: Support | None = None  # generated answers only
    fallback: Fallback | None = None  # set when most of a generated answer is unsupported


@dataclass(frozen=True)
class PaperHit:
    """One retrieved paper: fused score, its best chunks and its stored metadata."""

    paper_id: str
    title: str
    score: float
    dense: float
    lexical: float
    passages: tuple[Passage, ...]
    metadata: dict[str, object] = field(default_factory=dict, hash=False, compare=False)

    @property
    def abstract(self) -> str:
        return str(self.metadata.get("abstract", ""))


@dataclass(frozen=True)
class Filters:
    """Metadata filters; each applies only when set."""

    year_min: int | None = None
    year_max: int | None = None
    author: str | None = None
    category: str | None = None
    title: str | None = None

    def active(self) -> bool:
        return any(v not in (None, "") for v in (self.year_min, self.year_max, self.author, self.category, self.title))

    def match(self, meta: dict[str, object]) -> bool:
        """Whether a chunk's metadata passes every set filter."""
        year = meta.get("year")
        if self.year_min is not None and not (isinstance(year, int) and year >= self.year_min):
            return False
        if self.year_max is not None and not (isinstance(year, int) and year <= self.year_max):
            return False
        for wanted, key in ((self.author, "authors"), (self.category, "categories"), (self.title, "title")):
            if wanted and wanted.casefold() not in str(meta.get(key, "")).casefold():
                return False
        return True
