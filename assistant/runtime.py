"""Process set-up done once at each entry point: offline model loading, quiet logs."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

from assistant.config import Settings


def tiktoken_cache() -> Path:
    """The tiktoken encodings llama-index-core ships, so token counting needs no download."""
    from importlib.util import find_spec

    # find_spec locates the package without paying for its import (about 2 s of CPU).
    spec = find_spec("llama_index.core")
    origin = spec.origin if spec else None
    return Path(origin).parent / "_static" / "tiktoken_cache" if origin else Path("tiktoken_cache")


def prepare_runtime(settings: Settings) -> None:
    """Point every model loader at local files and set the log level."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(tiktoken_cache()))
    # Read by transformers when (if ever) it is imported: the ONNX query path never imports it, which saves ~0.6 s.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "openai", "bm25s", "chromadb", "sentence_transformers", "transformers", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    warnings.filterwarnings("ignore", category=FutureWarning)
    if "transformers" in sys.modules:  # imported before the variables above were set
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


def store_label(settings: Settings) -> str:
    """Where the store lives, for messages."""
    if settings.chroma_host:
        return f"chroma://{settings.chroma_host}:{settings.chroma_port}/{settings.collection}"
    return f"{settings.chroma_path}/{settings.collection}"
