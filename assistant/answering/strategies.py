"""One strategy per mode (ask, compare, summarise): how it retrieves, and how it answers without an LLM."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from assistant.answering import extractive
from assistant.answering.evidence import EvidenceBuilder
from assistant.answering.plan import CompareRow, Plan, Theme
from assistant.answering.relevance import topic_query
from assistant.answering.themes import group_themes
from assistant.config import Settings
from assistant.models import Citation, Evidence, Filters, Mode, PaperHit
from assistant.retrieval.retriever import Retriever
from assistant.text.names import names

Prepared = tuple[tuple[CompareRow, ...], tuple[Theme, ...]]  # compare rows and summary themes
SUMMARY_POOL = 50  # papers a summary considers before its relevance threshold and cap


@dataclass(frozen=True)
class Query:
    """What a strategy searches with: the standalone question, its vector, how many papers and which."""

    text: str
    vector: Sequence[float]
    k: int
    filters: Filters | None


@dataclass(frozen=True)
class Found:
    """What a strategy retrieved: the papers to answer from, and relevant ones left out for room."""

    hits: list[PaperHit]
    beyond_cap: tuple[str, ...] = ()


def focus(evidence: Sequence[Evidence], cite_ratio: float) -> list[Evidence]:
    """Papers close enough to the best one to be worth citing in a short answer."""
    if not evidence:
        return []
    top = evidence[0].score
    return [e for e in evidence if e.score >= cite_ratio * top]


class Strategy(Protocol):
    """How one mode retrieves, prepares and composes its answer."""

    @property
    def mode(self) -> Mode: ...

    def retrieve(self, query: Query) -> Found: ...

    def prepare(self, query: Query, hits: Sequence[PaperHit], evidence: Sequence[Evidence]) -> Prepared: ...

    def compose(self, plan: Plan) -> tuple[str, list[Citation]]: ...

    def relevant(self, evidence: Sequence[Evidence]) -> list[Evidence]: ...


@dataclass(frozen=True)
class AskStrategy:
    """A direct answer from the few best papers."""

    retriever: Retriever
    settings: Settings
    mode: Mode = "ask"

    def retrieve(self, query: Query) -> Found:
        return Found(self.retriever.search(query.text, query.k, query.filters, query.vector))

    def prepare(self, query: Query, hits: Sequence[PaperHit], evidence: Sequence[Evidence]) -> Prepared:
        return (), ()

    def compose(self, plan: Plan) -> tuple[str, list[Citation]]:
        return extractive.compose_ask(self.relevant(plan.evidence))

    def relevant(self, evidence: Sequence[Evidence]) -> list[Evidence]:
        return focus(evidence, self.settings.cite_ratio)


@dataclass(frozen=True)
class CompareStrategy:
    """Papers side by side: the main hits plus the best paper for each name in the question."""

    retriever: Retriever
    evidence: EvidenceBuilder
    settings: Settings
    mode: Mode = "compare"

    def retrieve(self, query: Query) -> Found:
        hits = self.retriever.search(query.text, query.k, query.filters, query.vector)
        seen = {h.paper_id for h in hits}
        extra: list[PaperHit] = []
        for name in names(query.text):
            for hit in self.retriever.search(name, 1, query.filters):
                if hit.paper_id not in seen and name.casefold() in (hit.title + " " + hit.abstract).casefold():
                    seen.add(hit.paper_id)
                    extra.append(hit)
        return Found((extra + hits)[: max(query.k, len(extra) + 2)] if extra else hits)

    def prepare(self, query: Query, hits: Sequence[PaperHit], evidence: Sequence[Evidence]) -> Prepared:
        # Rows are kept on the plan so the extractive answer reuses them instead of re-scoring every sentence.
        sentences = [self.evidence.all_sentences(h, query.text, query.vector) for h in hits]
        return tuple(extractive.compare_rows(evidence, sentences)), ()

    def compose(self, plan: Plan) -> tuple[str, list[Citation]]:
        if len(plan.rows) > 1:
            return extractive.compose_compare(plan.rows)
        return extractive.compose_ask(focus(plan.evidence, self.settings.cite_ratio))

    def relevant(self, evidence: Sequence[Evidence]) -> list[Evidence]:
        return list(evidence)


@dataclass(frozen=True)
class SummariseStrategy:
    """An overview: every relevant paper up to the cap, grouped into themes."""

    retriever: Retriever
    evidence: EvidenceBuilder
    settings: Settings
    mode: Mode = "summarise"

    def retrieve(self, query: Query) -> Found:
        cap = self.settings.summary_max_papers
        # The pool does not shrink with the cap, so "relevant papers found" means the same whatever the cap.
        hits = self.retriever.search(topic_query(query.text), max(2 * cap, SUMMARY_POOL), query.filters)
        top = hits[0].score if hits else 0.0
        relevant = [h for h in hits if h.score >= self.settings.summary_threshold * top]
        return Found(relevant[:cap], tuple(h.title for h in relevant[cap:]))

    def prepare(self, query: Query, hits: Sequence[PaperHit], evidence: Sequence[Evidence]) -> Prepared:
        return (), tuple(group_themes(evidence, [self.evidence.paper_vector(h) for h in hits]))

    def compose(self, plan: Plan) -> tuple[str, list[Citation]]:
        n, found = len(plan.evidence), len(plan.evidence) + len(plan.beyond_cap)
        return extractive.compose_summary(plan.evidence, plan.themes, f"Cites {n} of the {found} relevant papers found.")

    def relevant(self, evidence: Sequence[Evidence]) -> list[Evidence]:
        return list(evidence)


def strategies(retriever: Retriever, evidence: EvidenceBuilder, settings: Settings) -> dict[Mode, Strategy]:
    """One strategy per mode."""
    return {
        "ask": AskStrategy(retriever, settings),
        "compare": CompareStrategy(retriever, evidence, settings),
        "summarise": SummariseStrategy(retriever, evidence, settings),
    }
