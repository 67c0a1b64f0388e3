"""A streamed answer that owns its own usage, so concurrent answers from one client never see each other's counts."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator

from assistant.errors import LLMError
from assistant.models import Usage


class StreamedResponse:
    """Iterate once for the text deltas; afterwards `text`, `usage` and `finished` describe this answer alone.

    `chunks` yields the deltas and returns the server's usage (None when it sent none); `estimate` counts the
    usage of a text locally when the server does not say.
    """

    def __init__(self, chunks: Generator[str, None, Usage | None], estimate: Callable[[str], Usage]) -> None:
        self._chunks = chunks
        self._estimate = estimate
        self._parts: list[str] = []
        self._usage: Usage | None = None
        self._started = False
        self.finished = False

    @property
    def usage(self) -> Usage | None:
        """Tokens this answer cost: the server's figures, else an estimate; None before the stream ends or when nothing came."""
        return self._usage

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._parts)

    def __iter__(self) -> Iterator[str]:
        if self._started:
            raise RuntimeError("a streamed response can be iterated only once")
        self._started = True
        try:
            server_usage = yield from self._recorded()
        except LLMError:
            # A broken answer still cost tokens; callers report them beside the partial text.
            self._usage = self._estimate(self.text) if self._parts else None
            raise
        self._usage = server_usage or self._estimate(self.text)
        self.finished = True

    def _recorded(self) -> Generator[str, None, Usage | None]:
        """The deltas, each kept for `text`, and the server's usage as the return value."""
        while True:
            try:
                delta = next(self._chunks)
            except StopIteration as stop:
                return stop.value
            self._parts.append(delta)
            yield delta
