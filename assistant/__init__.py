"""Question answering over paper abstracts with checked, sentence-level citations."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistant.config import Settings

if TYPE_CHECKING:
    from assistant.answering.pipeline import Assistant
    from assistant.index.embed import Embedder
    from assistant.index.store import ChunkStore
    from assistant.llm.protocol import LLM

__all__ = ["Settings", "build_assistant"]


def build_assistant(
    settings: Settings,
    *,
    llm: LLM | None = None,
    store: ChunkStore | None = None,
    embedder: Embedder | None = None,
) -> Assistant:
    """The assistant with default collaborators for whatever is not passed in."""
    from assistant.answering.pipeline import Assistant
    from assistant.index.embed import build_embedder
    from assistant.index.lexical import LexicalCache
    from assistant.index.paths import lexical_folder
    from assistant.index.store import open_store
    from assistant.retrieval.retriever import FusionParams, Retriever

    embedder = embedder or build_embedder(settings)
    store = store or open_store(settings, embedder.name, embedder.dim, create=False)
    if llm is None and settings.llm_configured:
        from assistant.llm.client import LLMClient

        llm = LLMClient.from_settings(settings)
    params = FusionParams(
        method=settings.fusion,
        dense_weight=settings.dense_weight,
        candidates=settings.candidate_chunks,
        chunks_per_paper=settings.chunks_per_paper,
    )
    retriever = Retriever(store, embedder, LexicalCache(store, lexical_folder(settings)), params)
    return Assistant(settings, retriever, llm)
