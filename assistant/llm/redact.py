"""Secrets out of everything an endpoint sends back: answers (streamed or whole) and error texts.

An endpoint may echo the Authorization header into its answer, whole, split across stream chunks, or in part. Any
run of `WINDOW` or more characters copied from a secret is replaced, so a partial echo ("canary-7f3a9" of
"sk-canary-7f3a9") is caught too; a secret shorter than the window is matched whole.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import TypeVar

REDACTED = "[redacted]"
WINDOW = 8
T = TypeVar("T")
MIN_SECRET = 4  # shorter "secrets" (a placeholder such as "x") would blank ordinary words


class Redactor:
    """Finds and replaces the configured secrets in text; `hold` is how much of a stream's tail may still be one."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        kept = {s for s in secrets if s and len(s) >= MIN_SECRET}
        self._secrets = tuple(kept)
        self._windows: dict[int, set[str]] = {}
        for secret in kept:
            size = min(WINDOW, len(secret))
            self._windows.setdefault(size, set()).update(secret[i : i + size] for i in range(len(secret) - size + 1))
        self.hold = max(self._windows, default=1) - 1

    def __bool__(self) -> bool:
        return bool(self._windows)

    def runs(self, text: str) -> list[tuple[int, int]]:
        """Maximal spans of `text` covered by some window of a secret, in order."""
        covered: list[tuple[int, int]] = []
        for size, windows in self._windows.items():
            for i in range(len(text) - size + 1):
                if text[i : i + size] in windows:
                    covered.append((i, i + size))
        merged: list[tuple[int, int]] = []
        for s, e in sorted(covered):
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        return merged

    def redact(self, text: str) -> str:
        """`text` with every secret (or long enough piece of one) replaced by REDACTED."""
        if not self._windows:
            return text
        return _replace(text, self.runs(text))

    def stream(self, deltas: Generator[str, None, T]) -> Generator[str, None, T]:
        """The deltas with secrets redacted, holding back a tail that could still be the start of one.

        The held tail is released (redacted) when the stream ends or breaks, so partial answers keep their text.
        """
        if not self._windows:
            return (yield from deltas)
        pending = ""
        while True:
            try:
                delta = next(deltas)
            except StopIteration as stop:
                result = stop.value
                break
            except Exception:
                # What came before a break is the partial answer: release it (redacted), then the error.
                if pending:
                    yield self.redact(pending)
                raise
            safe, pending = self._split(pending + delta)
            if safe:
                yield safe
        if pending:
            yield self.redact(pending)
        return result

    def _split(self, pending: str) -> tuple[str, str]:
        """(redacted text that is decided, raw tail that a later delta could still turn into a secret)."""
        runs = self.runs(pending)
        # Only a tail that is itself a piece of a secret can still grow into one; ordinary text is not held back.
        tail = next((k for k in range(min(self.hold, len(pending)), 0, -1) if self._piece(pending[-k:])), 0)
        cut = len(pending) - tail
        for s, e in runs:
            if s < cut <= e:  # never split a secret: its rest may still be arriving
                cut = s
                break
        decided = [(s, e) for s, e in runs if e <= cut]
        return _replace(pending[:cut], decided), pending[cut:]

    def _piece(self, text: str) -> bool:
        """Whether `text` occurs inside one of the secrets."""
        return any(text in secret for secret in self._secrets)


def _replace(text: str, runs: list[tuple[int, int]]) -> str:
    """`text` with each run replaced by REDACTED."""
    parts: list[str] = []
    pos = 0
    for s, e in runs:
        parts += [text[pos:s], REDACTED]
        pos = e
    parts.append(text[pos:])
    return "".join(parts)
