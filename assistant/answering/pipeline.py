"""The answering pipeline: rewrite, retrieve, gather evidence, answer, check citations."""

from __future__ import annotations

import time
from typing import Any, Unpack

from assistant.answering.evidence import EvidenceBuilder
from assistant.answering.generation import (
    AnswerStream,
    ExtractiveGeneration,
    Generation,
    LLMGeneration,
    RefusalGeneration,
    Writer,
)
from assistant.answering.plan import AskOptions, Plan, Request
from assistant.answering.planner import Planner
from assistant.answering.strategies import strategies
from assistant.answering.termstats import CollectionTermStats
from assistant.config import Settings
from assistant.llm.protocol import LLM
from assistant.models import Answer
from assistant.retrieval.retriever import Retriever

__all__ = ["Answer", "AnswerStream", "Assistant", "Plan"]


class Assistant:
    """Answers questions over one collection with checked citations; one instance serves many threads."""

    def __init__(self, settings: Settings, retriever: Retriever, llm: LLM | None = None) -> None:
        self.settings = settings
        self.retriever = retriever
        self.embedder = retriever.embedder
        self.store = retriever.store
        self.llm = llm
        self.evidence = EvidenceBuilder(self.embedder, CollectionTermStats(self.store), settings.evidence_sentences)
        self.modes = strategies(retriever, self.evidence, settings)
        self.planner = Planner(settings, self.evidence, self.modes, retriever, llm)
        self.writer = Writer(llm, settings, self.embedder) if llm is not None else None

    def standalone(self, question: str, history: list[str] | tuple[str, ...]) -> str:
        """The question rewritten to stand alone: by the LLM when configured, else offline."""
        return self.planner.standalone(question, history)

    def plan(self, question: str, **options: Unpack[AskOptions]) -> Plan:
        """Retrieve and gather evidence; no generation. An empty question raises `InputError`."""
        return self.planner.plan(Request.of(question, options))

    def stream(self, question: str, **options: Unpack[AskOptions]) -> AnswerStream:
        """Plan now; generation happens while the caller iterates."""
        started = time.perf_counter()
        plan = self.plan(question, **options)
        return AnswerStream(plan, self._generation(plan), started)

    def ask(self, question: str, **options: Unpack[AskOptions]) -> Answer:
        """The whole answer at once."""
        return self.stream(question, **options).result

    def _generation(self, plan: Plan) -> Generation:
        if plan.refused:
            return RefusalGeneration(plan, extractive_mode=self.writer is None)
        if self.writer is None:
            return ExtractiveGeneration(plan, self.modes[plan.mode])
        return LLMGeneration(plan, self.modes[plan.mode], self.writer)

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
