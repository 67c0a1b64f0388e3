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

# Seconds the start-up check waits for `/v1/models`: enough for a local server, short enough not to stall a start.
CHECK_TIMEOUT = 5.0


def build_assistant(
    settings: Settings,
    *,
    llm: LLM | None = None,
    store: ChunkStore | None = None,
    embedder: Embedder | None = None,
    check_llm: bool = False,
) -> Assistant:
    """The assistant with default collaborators for whatever is not passed in.

    With `check_llm`, the configured endpoint is asked once which models it serves, so that an unreachable endpoint or
    an unknown model name raises `LLMError` now rather than at the first question. Entry points that talk to people
    (the app, the CLI) ask for it; library callers and tests that script the endpoint's every reply do not.
    """
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
        if check_llm:
            check_endpoint(settings)
    params = FusionParams.from_settings(settings)
    retriever = Retriever(store, embedder, LexicalCache(store, lexical_folder(settings)), params)
    return Assistant(settings, retriever, llm)


def check_endpoint(settings: Settings) -> None:
    """One `/v1/models` request with a short timeout and no retries; raises `LLMError` naming the fix."""
    from assistant.llm.client import LLMClient

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    assert settings.llm_base_url is not None
    timeout = min(CHECK_TIMEOUT, settings.llm_timeout)
    LLMClient(settings.llm_base_url, settings.llm_model, key, timeout=timeout, max_retries=0).check()
