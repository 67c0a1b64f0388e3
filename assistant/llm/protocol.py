"""What the answering pipeline needs from an LLM, so any client (or a test's scripted one) can stand in."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from assistant.models import Usage

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Completion:
    """One whole answer and what it cost."""

    text: str
    usage: Usage


class Generation(Protocol):
    """One streamed answer: iterate it once for the text deltas; `usage` is known when the stream ends or breaks."""

    def __iter__(self) -> Iterator[str]: ...

    @property
    def usage(self) -> Usage | None: ...


class LLM(Protocol):
    """A chat model: streams or completes answers, counts tokens and says what it is (never with a key)."""

    def stream(self, messages: Messages, max_tokens: int) -> Generation: ...

    def complete(self, messages: Messages, max_tokens: int) -> Completion: ...

    def count_tokens(self, text: str) -> int: ...

    def describe(self) -> str: ...
