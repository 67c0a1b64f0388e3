"""Errors a user sees as one clear line."""

from __future__ import annotations


class AssistantError(Exception):
    """Base for every error with a message meant for the user."""


class ConfigError(AssistantError):
    """A setting is wrong or inconsistent."""


class StoreError(AssistantError):
    """The Chroma store is unreachable or unusable."""


class EmbeddingError(AssistantError):
    """The embedding model or endpoint failed."""


class ModelMismatchError(StoreError):
    """The collection was built with another embedding model."""


class InputError(AssistantError):
    """A corpus file or record cannot be read."""


class LLMError(AssistantError):
    """The LLM endpoint failed; `kind` says how."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind
