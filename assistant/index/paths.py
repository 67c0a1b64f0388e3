"""Where derived files of a collection live."""

from __future__ import annotations

from pathlib import Path

from assistant.config import Settings
from assistant.index.lexical import index_folder


def lexical_folder(settings: Settings) -> Path:
    """The BM25 index folder of the configured collection, kept apart per store."""
    where = f"{settings.chroma_host}_{settings.chroma_port}" if settings.chroma_host else str(settings.chroma_path.resolve())
    return index_folder(settings.index_dir, settings.collection, where)
