"""The answering pipeline: rewrite, retrieve, gather evidence, answer, check citations."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from assistant.answering import extractive
from assistant.answering.citations import check_citations
from assistant.config import Settings
from assistant.errors import LLMError
from assistant.answering.evidence import EvidenceBuilder
from assistant.models import Answer, Citation, Evidence, Filters, Mode, PaperHit, Sentence, Timings, Usage
from assistant.answering.modes import resolve_mode
from assistant.answering.prompts import REFUSAL, SYSTEM, build_messages, looks_refused, rewrite_messages
from assistant.answering.relevance import refusal_reason, topic_query
from assistant.retrieval.retriever import Retriever
from assistant.answering.rewrite import accept_rewrite, offline_rewrite
from assistant.text.sentences import sentence_spans, words
from assistant.answering.themes import group_themes

if TYPE_CHECKING:
    from assistant.llm.client import LLMClient

log = logging.getLogger("assistant.answering.pipeline")
_NAME = re.compile(r"\b([A-Z][A-Za-z0-9]*[A-Z0-9][A-Za-z0-9-]*|[A-Z][a-z]+(?:-[A-Z][a-z]+)+)\b")
_ECHO_WORDS = 6  # this many consecutive words of the system prompt in one sentence count as repeating it
_SYSTEM_WORDS = words(SYSTEM.replace(REFUSAL, " | "))  # the refusal it prescribes is a legitimate answer
_SYSTEM_GRAMS = frozenset(tuple(_SYSTEM_WORDS[i : i + _ECHO_WORDS]) for i in range(len(_SYSTEM_WORDS) - _ECHO_WORDS + 1))
_SYSTEM_JOINED = f" {' '.join(_SYSTEM_WORDS)} "
_LETTER = re.compile(r"[^\W\d_]")


def _echoes_system(sentence: str) -> bool:
    """Whether a sentence repeats the system prompt: six of its words in a row, or all of a shorter rule."""
    w = words(sentence)
    if len(w) >= 4 and f" {' '.join(w)} " in _SYSTEM_JOINED:
        return True
    return any(tuple(w[i : i + _ECHO_WORDS]) in _SYSTEM_GRAMS for i in range(len(w) - _ECHO_WORDS + 1))


def strip_system_echo(text: str) -> tuple[str, int]:
    """The answer without sentences that repeat the system prompt (a source may ask the model to reveal it), and how many went."""
    removed = 0
    lines: list[str] = []
    for line in text.split("\n"):
        kept: list[str] = []
        pos = 0
        for start, end in sentence_spans(line):
            if _echoes_system(line[start:end]):
                kept.append(line[pos:start])
                pos = end
                removed += 1
        if pos == 0:
            lines.append(line)
        elif _LETTER.search(rest := re.sub(r"(?<=\S)[ \t]{2,}", " ", "".join(kept) + line[pos:]).rstrip()):
            lines.append(rest)  # a line left with only its list number ("2.") goes too
    return "\n".join(lines), removed


SUMMARY_POOL = 50  # papers a summary considers before its relevance threshold and cap


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
    rows: tuple[tuple[Evidence, dict[str, Sentence | None]], ...]
    table: tuple[dict[str, str], ...]
    themes: tuple[tuple[str, list[int]], ...]
    retrieval_seconds: float
    beyond_cap: tuple[str, ...] = ()  # titles of relevant papers a summary had no room for


class AnswerStream:
    """Iterate for text deltas; `evidence` is known before the first delta, `result` after the last."""

    def __init__(self, owner: Assistant, plan: Plan, started: float) -> None:
        self._owner = owner
        self.plan = plan
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
        if self._result is None:
            for _ in self:
                pass
        assert self._result is not None
        return self._result

    def __iter__(self) -> Iterator[str]:
        if self._result is not None:
            yield from ()
            return
        yield from self._owner._generate(self)

    def _finish(self, answer: Answer) -> None:
        self._result = answer


class Assistant:
    """Answers questions over one collection with checked citations."""

    def __init__(self, settings: Settings, retriever: Retriever, llm: LLMClient | None = None) -> None:
        self.settings = settings
        self.retriever = retriever
        self.embedder = retriever.embedder
        self.store = retriever.store
        self.llm = llm
        self.evidence = EvidenceBuilder(self.embedder, settings.evidence_sentences)

    # -- planning ------------------------------------------------------------------------------

    def standalone(self, question: str, history: Sequence[str]) -> str:
        """The question rewritten to stand alone: by the LLM when configured, else offline."""
        if not history:
            return question
        if self.llm is not None:
            try:
                candidate = self.llm.complete(rewrite_messages(question, history), max_tokens=80).strip().strip('"')
                if accept_rewrite(candidate, question):
                    return candidate
            except LLMError as exc:
                log.warning("follow-up rewrite fell back to offline: %s", exc)
        return offline_rewrite(question, history)

    def _compare_hits(self, query: str, k: int, filters: Filters | None, vector: Sequence[float]) -> list[PaperHit]:
        """Main hits plus the best paper for each name in the question, so both sides are present."""
        hits = self.retriever.search(query, k, filters, vector)
        seen = {h.paper_id for h in hits}
        extra: list[PaperHit] = []
        for name in dict.fromkeys(m.group(1) for m in _NAME.finditer(query)):
            for hit in self.retriever.search(name, 1, filters):
                if hit.paper_id not in seen and name.casefold() in (hit.title + " " + hit.abstract).casefold():
                    seen.add(hit.paper_id)
                    extra.append(hit)
        return (extra + hits)[: max(k, len(extra) + 2)] if extra else hits

    def _refusal(self, question: str, hits: Sequence[PaperHit], evidence: Sequence[Evidence]) -> str:
        """Why the evidence is too weak to answer, or '' when it is strong enough."""
        return refusal_reason(question, hits, evidence, self.settings)

    def plan(
        self,
        question: str,
        *,
        mode: str | None = None,
        history: Sequence[str] = (),
        filters: Filters | None = None,
        top_k: int | None = None,
    ) -> Plan:
        """Retrieve and gather evidence; no generation."""
        started = time.perf_counter()
        standalone = self.standalone(question, history)
        chosen = resolve_mode(question, mode)
        k = top_k or self.settings.top_k
        qv = self.embedder.embed_query(standalone)
        beyond_cap: tuple[str, ...] = ()
        if chosen == "summarise":
            # The pool does not shrink with the cap, so "relevant papers found" means the same whatever the cap.
            depth = max(2 * self.settings.summary_max_papers, SUMMARY_POOL)
            hits = self.retriever.search(topic_query(standalone), depth, filters)
            top = hits[0].score if hits else 0.0
            relevant = [h for h in hits if h.score >= self.settings.summary_threshold * top]
            hits = relevant[: self.settings.summary_max_papers]
            beyond_cap = tuple(h.title for h in relevant[self.settings.summary_max_papers :])
        elif chosen == "compare":
            hits = self._compare_hits(standalone, k, filters, qv)
        else:
            hits = self.retriever.search(standalone, k, filters, qv)
        evidence = self.evidence.build(standalone, hits, qv)
        reason = self._refusal(standalone, hits, evidence)
        rows: tuple[tuple[Evidence, dict[str, Sentence | None]], ...] = ()
        themes: tuple[tuple[str, list[int]], ...] = ()
        if not reason and chosen == "compare":
            # Rows are kept on the plan so the extractive answer reuses them instead of re-scoring every sentence.
            rows = tuple(extractive.compare_rows(evidence, [self.evidence.all_sentences(h, standalone, qv) for h in hits]))
        if not reason and chosen == "summarise":
            vectors = [self._paper_vector(h) for h in hits]
            themes = tuple(group_themes(evidence, vectors))
        return Plan(
            question,
            standalone,
            chosen,
            tuple(hits),
            tuple(evidence),
            bool(reason),
            reason,
            rows,
            tuple(extractive.table_dicts(rows)),
            themes,
            time.perf_counter() - started,
            beyond_cap,
        )

    def _paper_vector(self, hit: PaperHit) -> list[float]:
        _, vectors = self.evidence._sentence_vectors([hit])[hit.paper_id]
        dim = len(vectors[0]) if vectors else 0
        return [sum(v[i] for v in vectors) / len(vectors) for i in range(dim)]

    # -- answering -----------------------------------------------------------------------------

    def stream(
        self,
        question: str,
        *,
        mode: str | None = None,
        history: Sequence[str] = (),
        filters: Filters | None = None,
        top_k: int | None = None,
    ) -> AnswerStream:
        """Plan now; generation happens while the caller iterates."""
        started = time.perf_counter()
        return AnswerStream(self, self.plan(question, mode=mode, history=history, filters=filters, top_k=top_k), started)

    def ask(self, question: str, **kwargs: Any) -> Answer:
        """The whole answer at once."""
        return self.stream(question, **kwargs).result

    def _generate(self, stream: AnswerStream) -> Iterator[str]:
        plan = stream.plan
        base = Answer(
            question=plan.question,
            standalone_question=plan.standalone,
            mode=plan.mode,
            text="",
            citations=(),
            evidence=plan.evidence,
            table=plan.table,
            extractive=self.llm is None,
        )
        first: float | None = None
        if plan.refused:
            text = extractive.compose_refusal(plan.evidence[:3], plan.reason)
            yield text
            stream._finish(self._timed(replace(base, text=text, refused=True, evidence=plan.evidence[:3]), stream, plan, None))
            return
        if self.llm is None:
            text, citations = self._extractive(plan)
            for line in text.splitlines(keepends=True):
                if first is None:
                    first = time.perf_counter()
                yield line
            cited = {c.n for c in citations}
            answer = replace(base, text=text, citations=tuple(citations), **self._coverage(plan, cited))
            stream._finish(self._timed(answer, stream, plan, first))
            return
        yield from self._generate_llm(stream, base)

    def _extractive(self, plan: Plan) -> tuple[str, list[Citation]]:
        if plan.mode == "compare" and len(plan.rows) > 1:
            return extractive.compose_compare(plan.rows)
        if plan.mode == "summarise":
            n, found = len(plan.evidence), len(plan.evidence) + len(plan.beyond_cap)
            return extractive.compose_summary(plan.evidence, plan.themes, f"Cites {n} of the {found} relevant papers found.")
        return extractive.compose_ask(self._focus(plan.evidence))

    def _focus(self, evidence: Sequence[Evidence]) -> list[Evidence]:
        """Papers close enough to the best one to be worth citing in a short answer."""
        if not evidence:
            return []
        top = evidence[0].score
        return [e for e in evidence if e.score >= self.settings.cite_ratio * top]

    def _coverage(self, plan: Plan, cited: set[int]) -> dict[str, Any]:
        wide = plan.mode in ("summarise", "compare")
        relevant = list(enumerate(plan.evidence if wide else self._focus(plan.evidence), 1))
        # A summary's relevant papers past ASSISTANT_SUMMARY_MAX_PAPERS were never given to the answer: still left out.
        left = tuple(ev.title for n, ev in relevant if n not in cited) + plan.beyond_cap
        found = len(relevant) + len(plan.beyond_cap)
        covered = sum(1 for n, _ in relevant if n in cited)
        return {"coverage": f"Cites {covered} of the {found} relevant papers found.", "left_out": left}

    def _generate_llm(self, stream: AnswerStream, base: Answer) -> Iterator[str]:
        assert self.llm is not None
        plan = stream.plan
        s = self.settings
        messages, fitted = build_messages(
            plan.question if plan.standalone == plan.question else plan.standalone,
            plan.mode,
            plan.evidence,
            s.context_window - s.max_answer_tokens,
            self.llm.count_tokens,
            plan.themes,
        )
        evidence = plan.evidence[:fitted]
        parts: list[str] = []
        first: float | None = None
        error: str | None = None
        incomplete = False
        try:
            for delta in self.llm.stream(messages, max_tokens=s.max_answer_tokens):
                if first is None:
                    first = time.perf_counter()
                parts.append(delta)
                yield delta
        except LLMError as exc:
            error = str(exc)
            incomplete = bool(parts)
            log.warning("LLM failed: %s", exc)
        text, echoed = strip_system_echo("".join(parts))
        if echoed:
            log.warning("removed %d sentence(s) of the answer that repeated the system prompt", echoed)
        usage = getattr(self.llm, "last_usage", None) or Usage()
        if error and not text:
            answer = replace(base, text="", error=error, incomplete=True, extractive=False, usage=usage)
            stream._finish(self._timed(answer, stream, plan, first))
            return
        checked = check_citations(text, evidence, self.embedder, s.support_threshold)
        cited = {c.n for c in checked.citations}
        answer = replace(
            base,
            text=checked.text,
            citations=checked.citations,
            unsupported=checked.unsupported,
            unsupported_spans=checked.unsupported_spans,
            dropped_citations=checked.dropped,
            refused=looks_refused(text) and not cited,
            error=error,
            incomplete=incomplete,
            usage=usage,
            **self._coverage(plan, cited),
        )
        stream._finish(self._timed(answer, stream, plan, first))

    @staticmethod
    def _timed(answer: Answer, stream: AnswerStream, plan: Plan, first: float | None) -> Answer:
        now = time.perf_counter()
        return replace(
            answer,
            timings=Timings(
                retrieval=plan.retrieval_seconds,
                first_token=(first - stream._started) if first else None,
                total=now - stream._started,
            ),
        )

    # -- collection ---------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Papers, chunks and embedding model of the collection."""
        return {
            "papers": len(self.store.papers()),
            "chunks": self.store.count(),
            "embedding_model": self.store.model,
            "collection": self.store.name,
        }

    def describe_llm(self) -> str:
        """What answers the questions, without any key."""
        return self.llm.describe() if self.llm is not None else "extractive, no LLM configured"
