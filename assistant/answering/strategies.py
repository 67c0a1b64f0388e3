"""One strategy per mode (ask, compare, summarise): how it retrieves, and how it answers without an LLM."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from assistant.answering import extractive
from assistant.answering.evidence import EvidenceBuilder
from assistant.answering.plan import CompareRow, Plan, Theme
from assistant.answering.relevance import topic_query
from assistant.answering.scorer import load_summary_bars
from assistant.answering.subjects import aspects, resolve, without_names
from assistant.answering.table import classify
from assistant.answering.themes import group_themes
from assistant.config import Settings
from assistant.models import Citation, Evidence, Filters, Mode, PaperHit, Sentence
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
    count: int | None = None  # how many papers the user's own words say the question is about ("the two studies")


@dataclass(frozen=True)
class Found:
    """What a strategy retrieved: the papers to answer from, and relevant ones left out for room."""

    hits: list[PaperHit]
    beyond_cap: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # names in a comparison that no paper matches
    question: str | None = None  # what the evidence answers, when not the question itself (a summary's topic)
    named: int = 0  # how many of the first hits a comparison's question names (its table's rows)


def passing(evidence: Sequence[Evidence], cite_bar: float, ratio: float = 0.0) -> list[Evidence]:
    """Papers whose best sentence reaches the fitted citation bar and `ratio` of the best paper's, best first; the
    best paper always.

    The planner has already refused when no sentence reaches the lower refusal bar, so the best paper answers.
    """
    ranked = sorted(evidence, key=lambda e: -e.best)
    floor = max(cite_bar, ratio * ranked[0].best) if ranked else cite_bar
    return [e for i, e in enumerate(ranked) if i == 0 or e.best >= floor]


def related(evidence: Sequence[Evidence], cited: Sequence[Evidence]) -> list[str]:
    """Titles of retrieved papers that did not pass the bar: listed, never quoted."""
    ids = {e.paper_id for e in cited}
    return [e.title for e in evidence if e.paper_id not in ids]


class Strategy(Protocol):
    """How one mode retrieves, prepares and composes its answer."""

    @property
    def mode(self) -> Mode: ...

    def retrieve(self, query: Query) -> Found: ...

    def prepare(self, query: Query, found: Found, evidence: Sequence[Evidence]) -> Prepared: ...

    def compose(self, plan: Plan) -> tuple[str, list[Citation]]: ...

    def relevant(self, plan: Plan) -> list[Evidence]: ...

    def select(self, hits: Sequence[PaperHit], evidence: Sequence[Evidence]) -> tuple[list[int], tuple[str, ...]]: ...


def keep_all(hits: Sequence[PaperHit], evidence: Sequence[Evidence]) -> tuple[list[int], tuple[str, ...]]:
    """Every retrieved paper stays in the plan (ask and compare choose what to cite when they compose)."""
    return list(range(len(hits))), ()


@dataclass(frozen=True)
class AskStrategy:
    """A direct answer from the few best papers."""

    retriever: Retriever
    evidence: EvidenceBuilder
    settings: Settings
    mode: Mode = "ask"

    def retrieve(self, query: Query) -> Found:
        return Found(self.retriever.search(query.text, query.k, query.filters, query.vector))

    def prepare(self, query: Query, found: Found, evidence: Sequence[Evidence]) -> Prepared:
        return (), ()

    def compose(self, plan: Plan) -> tuple[str, list[Citation]]:
        cited = self.relevant(plan)
        return extractive.compose_ask(cited, related(plan.evidence, cited))

    def relevant(self, plan: Plan) -> list[Evidence]:
        bar = self.evidence.model.cite_bar if plan.cite_bar is None else plan.cite_bar
        return passing(plan.evidence, bar, plan.cite_ratio)

    def select(self, hits: Sequence[PaperHit], evidence: Sequence[Evidence]) -> tuple[list[int], tuple[str, ...]]:
        return keep_all(hits, evidence)


@dataclass(frozen=True)
class CompareStrategy:
    """Papers side by side: the ones the question names, or as many of the best as it says, on the aspects it names."""

    retriever: Retriever
    evidence: EvidenceBuilder
    settings: Settings
    mode: Mode = "compare"

    def retrieve(self, query: Query) -> Found:
        subjects = resolve(self.retriever, query.text, query.filters)
        found = self.retriever.search(query.text, query.k, query.filters, query.vector)
        named = {h.paper_id for h in subjects.hits}
        # The named papers come first and alone make the table; the search's other papers stay as related evidence.
        hits = [*subjects.hits, *(h for h in found if h.paper_id not in named)]
        return Found(hits, missing=subjects.missing, named=len(subjects.hits))

    def prepare(self, query: Query, found: Found, evidence: Sequence[Evidence]) -> Prepared:
        pairs = list(zip(found.hits, evidence, strict=True))
        count = query.count
        if found.named and count in (None, found.named):
            pairs = pairs[: found.named]
        elif count:
            # "The two studies on X": the question says how many papers answer it, so its best ones are the rows (a
            # name that does not match that count, such as "PEFT" in "the two PEFT studies", names a topic). No bar on
            # the rows: on our counted set, dropping rows below the refusal bar lost more gold papers than wrong ones.
            pairs = sorted(pairs, key=lambda p: -p[1].best)[:count]
        else:
            # With no subjects named, the rows are the papers that answer: those passing the citation bar.
            ids = {e.paper_id for e in passing(evidence, self.evidence.model.cite_bar)}
            pairs = [(h, e) for h, e in pairs if e.paper_id in ids]
        named = names(query.text)
        asked = aspects(query.text, named)
        # Each cell is scored against its aspect without the subjects' names, which every sentence naming them would match.
        unnamed = without_names(query.text, named)
        rows = []
        for hit, ev in pairs:
            if asked:
                cells = {a: self._best(hit, unnamed if len(asked) == 1 else a, query) for a in asked}
            else:
                # Rows are kept on the plan so the extractive answer reuses them instead of re-scoring every sentence.
                cells = classify(self.evidence.all_sentences(hit, query.text, query.vector))
            rows.append((ev, cells))
        return tuple(rows), ()

    def _best(self, hit: PaperHit, aspect: str, query: Query) -> Sentence | None:
        """The paper's sentence that best answers one aspect, or None when the paper does not state it.

        A sentence must both answer the question and be about the aspect (asked without the subjects' names, which
        every sentence naming them would match): the geometric mean of the two probabilities picks it. The aspect
        counts as stated when the chance that at least one sentence is about it (noisy-OR) reaches the refusal bar.
        """
        about = self.evidence.all_sentences(hit, aspect, self.evidence.embedder.embed_query(aspect))
        whole = self.evidence.all_sentences(hit, query.text, query.vector)
        if not about or 1.0 - math.prod(1.0 - s.score for s in about) < self.evidence.model.refusal_bar:
            return None
        pick = max(range(len(about)), key=lambda i: about[i].score * whole[i].score)
        return whole[pick]

    def compose(self, plan: Plan) -> tuple[str, list[Citation]]:
        if len(plan.rows) > 1 or plan.missing:
            return extractive.compose_compare(plan.rows, plan.missing)
        cited = passing(plan.evidence, self.evidence.model.cite_bar)
        return extractive.compose_ask(cited, related(plan.evidence, cited))

    def relevant(self, plan: Plan) -> list[Evidence]:
        if len(plan.rows) > 1:
            return [ev for ev, _ in plan.rows]
        return passing(plan.evidence, self.evidence.model.cite_bar)

    def select(self, hits: Sequence[PaperHit], evidence: Sequence[Evidence]) -> tuple[list[int], tuple[str, ...]]:
        return keep_all(hits, evidence)


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
        # Searched with the topic alone (the request's phrasing would rank papers by how they match it); the evidence is
        # still scored against the whole question, as the evidence model was fitted.
        return Found(self.retriever.search(topic_query(query.text), max(2 * cap, SUMMARY_POOL), query.filters))

    def prepare(self, query: Query, found: Found, evidence: Sequence[Evidence]) -> Prepared:
        kept = {e.paper_id for e in evidence}
        hits = [h for h in found.hits if h.paper_id in kept]
        return (), tuple(group_themes(evidence, [self.evidence.paper_vector(h) for h in hits]))

    def compose(self, plan: Plan) -> tuple[str, list[Citation]]:
        n, found = len(plan.evidence), len(plan.evidence) + len(plan.beyond_cap)
        return extractive.compose_summary(plan.evidence, plan.themes, f"Cites {n} of the {found} relevant papers found.")

    def relevant(self, plan: Plan) -> list[Evidence]:
        return list(plan.evidence)

    def select(self, hits: Sequence[PaperHit], evidence: Sequence[Evidence]) -> tuple[list[int], tuple[str, ...]]:
        """Which of the pool a summary covers, up to the cap, and the titles past it.

        A paper is on the subtopic when its retrieval score reaches the fitted share of the best one
        (`evals.fit_summary`), or when one of its sentences reaches the citation bar.
        """
        top = hits[0].score if hits else 0.0
        bar, cite, cap = load_summary_bars()[0], self.evidence.model.cite_bar, self.settings.summary_max_papers
        keep = [i for i, (h, e) in enumerate(zip(hits, evidence, strict=True)) if h.score >= bar * top or e.best >= cite]
        return keep[:cap], tuple(evidence[i].title for i in keep[cap:])


def strategies(retriever: Retriever, evidence: EvidenceBuilder, settings: Settings) -> dict[Mode, Strategy]:
    """One strategy per mode."""
    return {
        "ask": AskStrategy(retriever, evidence, settings),
        "compare": CompareStrategy(retriever, evidence, settings),
        "summarise": SummariseStrategy(retriever, evidence, settings),
    }
