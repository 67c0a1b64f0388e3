"""How long and how much one answer may take: a total deadline, and a cap of max_tokens plus a margin.

`ASSISTANT_LLM_TIMEOUT` bounds each read, so a server that sends one token a second would otherwise never be cut
off; and a server that ignores `max_tokens` would make everything after it (the citation check above all)
unbounded. Past either limit the client stops reading and the answer is kept as a cut one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

CHARS_PER_TOKEN = 4  # used only to trim one oversized delta; tokens themselves are counted with the tokenizer
MIN_RECOUNT = 64


def answer_cap(max_tokens: int) -> int:
    """Tokens read before an answer is cut: what was asked for plus a margin for tokenizers that count differently."""
    return max_tokens + max(16, max_tokens // 4)


class AnswerLimits:
    """The deadline and token cap of one answer; `start` is called when its first request goes out."""

    def __init__(
        self, deadline: float, max_tokens: int, count: Callable[[str], int], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.deadline = deadline
        self.max_tokens = max_tokens
        self.cap = answer_cap(max_tokens)
        self._count = count
        self._clock = clock
        self._ends: float | None = None
        self._text: list[str] = []
        self._chars = 0
        self._tokens = 0
        self._recount_at = 0  # characters after which the tokens are counted again

    def start(self) -> None:
        """Start the clock (once: retries spend the same deadline)."""
        if self._ends is None:
            self._ends = self._clock() + self.deadline

    def expired(self) -> bool:
        """Whether the answer's deadline has passed."""
        return self._ends is not None and self._clock() >= self._ends

    def take(self, delta: str) -> tuple[str, bool]:
        """The part of `delta` within the cap, and whether the cap is now reached (stop reading)."""
        self._text.append(delta)
        self._chars += len(delta)
        if self._chars < self._recount_at:
            return delta, False
        # Each token is at least one character, so fewer new characters than the tokens left cannot pass the cap.
        self._tokens = self._count("".join(self._text))
        self._recount_at = self._chars + max(MIN_RECOUNT, self.cap - self._tokens)
        if self._tokens <= self.cap:
            return delta, False
        before = self._count("".join(self._text[:-1]))
        return delta[: max(0, self.cap - before) * CHARS_PER_TOKEN], True
