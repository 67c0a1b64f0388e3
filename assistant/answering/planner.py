"""Planning an answer: the standalone question, its mode, the papers, their evidence, and whether to refuse."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace

from assistant.answering import extractive
from assistant.answering.asking import asked_count, asks_specific
from assistant.answering.evidence import EvidenceBuilder
from assistant.answering.modes import asks_overview, resolve_mode
from assistant.answering.plan import Plan, Request
from assistant.answering.prompts import rewrite_messages
from assistant.answering.relevance import closest_first, refusal_reason
from assistant.answering.rewrite import accept_rewrite, offline_rewrite
from assistant.answering.scorer import EvidenceModel, load_summary_bars
from assistant.answering.strategies import Query, Strategy
from assistant.answering.subjects import one_named_work
from assistant.config import Settings
from assistant.errors import LLMError
from assistant.llm.protocol import LLM
from assistant.models import Evidence, Mode
from assistant.retrieval.retriever import Retriever

log = logging.getLogger("assistant.answering.pipeline")


class Planner:
    """Retrieves and gathers evidence for a request; no generation. Holds no per-question state."""

    def __init__(
        self,
        settings: Settings,
        evidence: EvidenceBuilder,
        modes: dict[Mode, Strategy],
        retriever: Retriever,
        llm: LLM | None = None,
    ) -> None:
        self.settings = settings
        self.retriever = retriever
        self.evidence = evidence
        self.modes = modes
        self.llm = llm

    def standalone(self, question: str, history: Sequence[str]) -> str:
        """The question rewritten to stand alone: by the LLM when configured, else offline."""
        if not history:
            return question
        if self.llm is not None:
            try:
                candidate = self.llm.complete(rewrite_messages(question, history), max_tokens=80).text.strip().strip('"')
                if accept_rewrite(candidate, question):
                    return candidate
            except LLMError as exc:
                log.warning("follow-up rewrite fell back to offline: %s", exc)
        return offline_rewrite(question, history)

    def plan(self, request: Request) -> Plan:
        """The plan for one request: its strategy's papers and evidence, and why to refuse if it must."""
        started = time.perf_counter()
        standalone = self.standalone(request.question, request.history)
        vector = self.evidence.embed_question(standalone)
        # The mode is read from the user's own words (a follow-up's "how does it compare" asks about one paper).
        asked_vector = vector if standalone == request.question else self.evidence.embedder.embed_query(request.question)
        strategy = self.modes[self._mode(request, asked_vector)]
        query = Query(standalone, vector, request.top_k or self.settings.top_k, request.filters, asked_count(request.question))
        found = strategy.retrieve(query)
        asked = found.question or standalone
        scored_with = query.vector if asked == standalone else self.evidence.embed_question(asked)
        pool, settled = self.evidence.assess(asked, found.hits, scored_with)
        keep, beyond = strategy.select(found.hits, pool)
        hits, evidence = [found.hits[i] for i in keep], [pool[i] for i in keep]
        # The lookup model judges questions that ask for a number or a name, without history (a follow-up's standalone
        # question carries the earlier turns' words): what it was fitted on. A statement or an open question keeps the
        # evidence bar alone: judging every direct question refused far more true SciFact claims typed as statements
        # (docs/benchmarks.md, "Near misses").
        lookup = strategy.mode == "ask" and settled is None and not request.history and asks_specific(asked)
        stated = self.evidence.stated(asked, pool) if lookup else None
        reason, cites = self._refusal(strategy.mode, pool, found.missing, settled, stated)
        rows, themes = strategy.prepare(query, replace(found, hits=hits), evidence) if not reason else ((), ())
        return Plan(
            request.question,
            standalone,
            strategy.mode,
            tuple(hits),
            tuple(evidence if not reason else closest_first(asked, pool)),
            bool(reason),
            reason,
            rows,
            tuple(extractive.table_dicts(rows)),
            themes,
            time.perf_counter() - started,
            found.beyond_cap + beyond,
            found.missing,
            cites.cite_bar if cites else None,
            cites.cite_ratio if cites else 0.0,
        )

    def _mode(self, request: Request, vector: Sequence[float]) -> Mode:
        """The detected (or requested) mode; a detected overview of details inside one named paper is a direct answer."""
        mode = resolve_mode(request.question, request.mode, vector, self.evidence.embedder.name)
        if mode != "summarise" or request.mode not in (None, "", "auto") or asks_overview(request.question):
            return mode
        return "ask" if one_named_work(self.retriever, request.question, request.filters) is not None else mode

    def _refusal(
        self, mode: Mode, pool: Sequence[Evidence], missing: Sequence[str], settled: float | None, stated: float | None
    ) -> tuple[str, EvidenceModel | None]:
        """Why to refuse ('' to answer), and the claim model when it decides (its citation bar and ratio apply)."""
        claims, lookups = self.evidence.claims, self.evidence.lookups
        if mode == "ask" and settled is not None and claims is not None:
            if pool and settled < claims.refusal_bar:
                best = max(e.best for e in pool)
                return (f"the closest abstracts do not settle the claim (probability {settled:.2f} < "
                        f"{claims.refusal_bar:.2f}; best sentence {best:.2f})"), claims  # fmt: skip
            return refusal_reason(pool, missing, 0.0), claims
        # A summary's topic gets lower sentence probabilities than a question does: it has its own fitted bar.
        bar = load_summary_bars()[1] if mode == "summarise" else self.evidence.model.refusal_bar
        reason = refusal_reason(pool, missing, bar)
        if not reason and stated is not None and lookups is not None and stated < lookups.refusal_bar:
            reason = (f"the closest abstract does not state what it asks for (probability {stated:.2f} < "
                      f"{lookups.refusal_bar:.2f})")  # fmt: skip
        return reason, None
