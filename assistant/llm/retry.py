"""The one retry loop for LLM requests, streamed or not.

The openai SDK's own retries stay off (max_retries=0) because tests require what they cannot give:
- test_llm_faults.py::test_500_backs_off_exponentially_then_fails_as_server wants waits of exactly 0.5, 1 and 2 s
  (the SDK adds random jitter);
- ::test_429_forever_is_rate_limit_after_retries wants a Retry-After of 1000 s honoured but capped at 30 s (the SDK
  does not retry at all past 60 s) and ::test_429_then_success_retries_with_warning a Retry-After of 0 honoured (the
  SDK ignores it), each retry a WARNING on this logger without the key (the SDK logs at INFO on its own);
- ::test_drop_before_any_text_is_retried and test_faults_e2e.py want a 200 stream that breaks before its first
  delta tried again (the SDK retries the request only, never a stream it has handed over).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TypeVar

from assistant.llm.failures import Failure

log = logging.getLogger("assistant.llm.client")

BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 30.0
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait; `sleep` is injectable so tests record the waits instead of sleeping."""

    max_retries: int
    endpoint: str
    sleep: Callable[[float], None]

    def delay(self, attempt: int, failure: Failure) -> float:
        """Seconds before retry `attempt`: the server's Retry-After up to a cap, else exponential backoff."""
        if failure.retry_after is not None:
            return min(max(failure.retry_after, 0.0), RETRY_AFTER_CAP)
        return min(BACKOFF_BASE * 2 ** (attempt - 1), BACKOFF_CAP)

    def wait(self, attempt: int, failure: Failure) -> None:
        """Log and sleep before retry `attempt`."""
        delay = self.delay(attempt, failure)
        if failure.what.isdigit():
            log.warning("LLM endpoint answered %s; retry %d/%d in %.1fs", failure.what, attempt, self.max_retries, delay)
        else:
            log.warning("LLM endpoint %s %s; retry %d/%d in %.1fs", self.endpoint, failure.what, attempt, self.max_retries, delay)
        self.sleep(delay)


def retrying(policy: RetryPolicy, attempt: Callable[[], Generator[str, None, T]]) -> Generator[str, None, T]:
    """Run `attempt` until it succeeds or fails for good; its deltas pass through and its return value is returned.

    An attempt raises `Failure` only before it yields text: once text reached the caller a retry would repeat it.
    """
    tries = 0
    while True:
        try:
            return (yield from attempt())
        except Failure as failure:
            if not failure.what or tries >= policy.max_retries:
                raise failure.error from None
            tries += 1
            policy.wait(tries, failure)


def retry_call(policy: RetryPolicy, call: Callable[[], T]) -> T:
    """`call()` under the same loop, for requests that return at once instead of streaming."""
    results: list[T] = []

    def attempt() -> Generator[str, None, None]:
        results.append(call())
        yield from ()

    for _ in retrying(policy, attempt):
        pass
    return results[-1]
