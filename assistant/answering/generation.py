"""Generating an answer from a plan: a refusal, an extractive answer, or an LLM's checked answer, and the stream around it."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from assistant.answering import extractive
from assistant.answering.citations import check_citations, split_claims
from assistant.answering.claims import plain_text
from assistant.answering.echo import strip_system_echo
from assistant.answering.plan import Plan
from assistant.answering.prompts import Budget, build_messages
from assistant.answering.refusals import looks_refused
from assistant.answering.strategies import Strategy
from assistant.config import Settings
from assistant.errors import LLMError
from assistant.index.embed import Embedder
from assistant.llm.protocol import LLM
from assistant.models import Answer, Evidence, Fallback, Mode, Support, Timings, Usage
from assistant.text.words import content_words

log = logging.getLogger("assistant.answering.pipeline")

UNBACKED_NOTE = (
    "The model's answer is not backed by the sources ({flagged} of {claims} of its claims unsupported); "
    "what the sources say is quoted below."
)


class Generation(Protocol):
    """Iterate once for the answer's text; `answer()` is the finished answer afterwards."""

    timed: bool  # whether the first delta is a generated token worth timing

    def __iter__(self) -> Iterator[str]: ...

    def answer(self) -> Answer: ...


def base_answer(plan: Plan, extractive_mode: bool) -> Answer:
    """The answer's fields known from the plan alone."""
    return Answer(
        question=plan.question,
        standalone_question=plan.standalone,
        mode=plan.mode,
        text="",
        citations=(),
        evidence=plan.evidence,
        table=plan.table,
        extractive=extractive_mode,
    )


def numbered(plan: Plan, relevant: Sequence[Evidence]) -> tuple[Evidence, ...]:
    """The answer's sources in citation order: the relevant papers as numbered in the answer, then the others."""
    ids = {e.paper_id for e in relevant}
    return (*relevant, *(e for e in plan.evidence if e.paper_id not in ids))


def coverage(plan: Plan, relevant: Sequence[Evidence], cited: set[int]) -> dict[str, Any]:
    """How many of the relevant papers the answer cites, and which it leaves out."""
    pairs = list(enumerate(relevant, 1))
    # A summary's relevant papers past ASSISTANT_SUMMARY_MAX_PAPERS were never given to the answer: still left out.
    left = tuple(ev.title for n, ev in pairs if n not in cited) + plan.beyond_cap
    found = len(pairs) + len(plan.beyond_cap)
    covered = sum(1 for n, _ in pairs if n in cited)
    return {"coverage": f"Cites {covered} of the {found} relevant papers found.", "left_out": left}


def support_of(text: str, unsupported_spans: Sequence[tuple[int, int]]) -> Support:
    """Count the checked answer's sentences: supported (cited, and the check kept them) and flagged (unsupported)."""
    claims = split_claims(text)
    flagged = set(unsupported_spans)
    # The check treats a cited sentence of fewer than two content words as a pointer ("See [1].") and checks nothing.
    supported = sum(
        1 for c in claims if c.numbers and (c.start, c.end) not in flagged and len(content_words(plain_text(c.text))) >= 2
    )
    return Support(sentences=len(claims), supported=supported, flagged=len(unsupported_spans))


def mostly_unsupported(support: Support) -> bool:
    """Whether more of the answer's claims are flagged than supported, so its gist is not what the sources say.

    Sentences that claim nothing (a refusal, "See [1].") are left out of the count. At a strict majority
    flagged, a reader who trusts the answer's drift is more often wrong than right; below it, the supported
    sentences carry the answer and the flags mark the rest.
    """
    return support.flagged > support.supported


class _Finished:
    """The answer of a generation, once it is known."""

    _answer: Answer | None = None

    def answer(self) -> Answer:
        if self._answer is None:
            raise RuntimeError("the answer is known only after the generation has been iterated")
        return self._answer


class RefusalGeneration(_Finished):
    """The refusal with the closest papers, when the evidence is too weak."""

    timed = False

    def __init__(self, plan: Plan, extractive_mode: bool) -> None:
        self.plan = plan
        self.extractive_mode = extractive_mode

    def __iter__(self) -> Iterator[str]:
        closest = self.plan.evidence[:3]
        text = extractive.compose_refusal(closest, self.plan.reason)
        yield text
        self._answer = replace(base_answer(self.plan, self.extractive_mode), text=text, refused=True, evidence=closest)


class ExtractiveGeneration(_Finished):
    """Verbatim evidence sentences composed by the mode's strategy, line by line."""

    timed = True

    def __init__(self, plan: Plan, strategy: Strategy) -> None:
        self.plan = plan
        self.strategy = strategy

    def __iter__(self) -> Iterator[str]:
        text, citations = self.strategy.compose(self.plan)
        yield from text.splitlines(keepends=True)
        relevant = self.strategy.relevant(self.plan)
        done = coverage(self.plan, relevant, {c.n for c in citations})
        sources = numbered(self.plan, relevant)
        self._answer = replace(base_answer(self.plan, True), text=text, citations=tuple(citations), evidence=sources, **done)


@dataclass(frozen=True)
class Writer:
    """What an LLM answer needs besides its plan: the model, the settings and the embedder that checks citations."""

    llm: LLM
    settings: Settings
    embedder: Embedder


class LLMGeneration(_Finished):
    """The LLM's answer: streamed as it comes, then stripped of system-prompt echoes and checked; owns its usage."""

    timed = True

    def __init__(self, plan: Plan, strategy: Strategy, writer: Writer) -> None:
        self.plan = plan
        self.strategy = strategy
        self.writer = writer

    def __iter__(self) -> Iterator[str]:
        s, plan = self.writer.settings, self.plan
        question = plan.question if plan.standalone == plan.question else plan.standalone
        budget = Budget(s.context_window - s.max_answer_tokens, self.writer.llm.count_tokens)
        # Only the papers that pass the citation bar are sources: a paper below it has no sentence that answers.
        relevant = self.strategy.relevant(plan)
        messages, fitted = build_messages(question, plan.mode, relevant, budget, plan.themes)
        response = self.writer.llm.stream(messages, max_tokens=s.max_answer_tokens)
        parts: list[str] = []
        error: str | None = None
        try:
            for delta in response:
                parts.append(delta)
                yield delta
        except LLMError as exc:
            error = str(exc)
            log.warning("LLM failed: %s", exc)
        self._answer = self._checked("".join(parts), relevant, fitted, error, response.usage or Usage())

    def _checked(self, raw: str, relevant: Sequence[Evidence], fitted: int, error: str | None, usage: Usage) -> Answer:
        """The answer with echoes removed and citations checked against the sources the prompt held."""
        base = replace(base_answer(self.plan, False), usage=usage, evidence=numbered(self.plan, relevant))
        evidence = relevant[:fitted]
        text, echoed = strip_system_echo(raw)
        if echoed:
            log.warning("removed %d sentence(s) of the answer that repeated the system prompt", echoed)
        if error and not text:
            return replace(base, text="", error=error, incomplete=True)
        checked = check_citations(text, evidence, self.writer.embedder, self.writer.settings.support_threshold)
        cited = {c.n for c in checked.citations}
        refused = looks_refused(text) and not cited
        support = support_of(checked.text, checked.unsupported_spans)
        return replace(
            base,
            text=checked.text,
            citations=checked.citations,
            unsupported=checked.unsupported,
            unsupported_spans=checked.unsupported_spans,
            dropped_citations=checked.dropped,
            refused=refused,
            error=error,
            incomplete=bool(error and raw),
            support=support,
            fallback=None if refused or not mostly_unsupported(support) else self._fallback(support),
            **coverage(self.plan, relevant, cited),
        )

    def _fallback(self, support: Support) -> Fallback:
        """The extractive answer to show beside this one, so the reader always has something true to read."""
        text, citations = self.strategy.compose(self.plan)
        # The extractive label says no LLM is configured; here one is, and the note says why the evidence is shown.
        text = text.removeprefix(extractive.LABEL).lstrip("\n")
        note = UNBACKED_NOTE.format(flagged=support.flagged, claims=support.flagged + support.supported)
        return Fallback(note=note, text=text, citations=tuple(citations))


class AnswerStream:
    """Iterate for text deltas; `evidence` is known before the first delta, `result` after the last."""

    def __init__(self, plan: Plan, generation: Generation, started: float) -> None:
        self.plan = plan
        self._generation = generation
        self._started = started
        self._result: Answer | None = None

    @property
    def evidence(self) -> tuple[Evidence, ...]:
        return self.plan.evidence

    @property
    def mode(self) -> Mode:
        return self.plan.mode

    @property
    def result(self) -> Answer:
        """The finished answer, generating the rest of it first if nobody iterated."""
        if self._result is None:
            for _ in self:
                pass
        assert self._result is not None
        return self._result

    def __iter__(self) -> Iterator[str]:
        if self._result is not None:
            return
        first: float | None = None
        for delta in self._generation:
            if first is None and self._generation.timed:
                first = time.perf_counter()
            yield delta
        timings = Timings(
            retrieval=self.plan.retrieval_seconds,
            first_token=(first - self._started) if first else None,
            total=time.perf_counter() - self._started,
        )
        self._result = replace(self._generation.answer(), timings=timings)
