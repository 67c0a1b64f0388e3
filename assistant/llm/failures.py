"""Every way an OpenAI-compatible endpoint can fail, as one clear line that never holds the key."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

import httpx
import openai

from assistant.errors import LLMError
from assistant.output.sanitise import visible

if TYPE_CHECKING:
    from assistant.llm.redact import Redactor

CONTEXT_WORDS = re.compile(
    r"context[ _-]?(length|window|size)|maximum context|exceed_context|exceeds? the available context|too many tokens"
    r"|prompt is too long|input is too large|requested tokens",
    re.IGNORECASE,
)
MODEL_MISSING = re.compile(r"model.*(not found|does not exist|not exist|unknown|not available|not loaded)|unknown model", re.I)
SECRET_LIKE = re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_\-]{8,}")
# What talking to an endpoint can raise; anything else is a bug and should surface as one.
TRANSPORT_ERRORS = (openai.APIError, httpx.HTTPError, httpx.StreamError, json.JSONDecodeError, UnicodeDecodeError)


class Failure(Exception):
    """A failed attempt: the error the user sees, and whether (`what`: how it is logged) and when to try again."""

    def __init__(self, error: LLMError, what: str = "", retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.what = what  # empty: retrying cannot help
        self.retry_after = retry_after


@dataclass(frozen=True)
class Explainer:
    """Turns exceptions from one endpoint into `Failure`s with messages naming the setting to check."""

    endpoint: str
    model: str
    timeout: float
    max_retries: int
    api_key: str | None = field(default=None, repr=False)
    deadline: float = 120.0
    redactor: Redactor | None = field(default=None, repr=False)

    def classify(self, exc: BaseException, received: int) -> Failure:
        """Any failure as a one-line `LLMError`, retryable or not; `received` is how many characters already came."""
        if isinstance(exc, openai.APIStatusError):
            return self.status_error(exc)
        cause = exc.__cause__ if isinstance(exc, openai.APIConnectionError) and exc.__cause__ else exc
        if isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol)):
            return Failure(
                LLMError(
                    f"LLM endpoint {self.endpoint} is unreachable; is the server running? (ASSISTANT_LLM_BASE_URL)", "unreachable"
                ),
                "unreachable",
            )
        if isinstance(cause, httpx.TimeoutException) or isinstance(exc, openai.APITimeoutError):
            if received:
                return Failure(LLMError(self.cut_message(received, f"sent nothing for {self.timeout:g} s"), "stream_cut"))
            # Not retried: each attempt would wait the whole timeout again.
            return Failure(
                LLMError(
                    f"LLM endpoint {self.endpoint} accepted the connection but did not answer within "
                    f"{self.timeout:g} s (ASSISTANT_LLM_TIMEOUT)",
                    "timeout",
                )
            )
        if isinstance(cause, (json.JSONDecodeError, UnicodeDecodeError, openai.APIResponseValidationError)):
            return Failure(LLMError(f"LLM endpoint {self.endpoint} sent data that is not valid SSE JSON", "malformed"))
        if isinstance(cause, (httpx.TransportError, httpx.StreamError)):
            if received:
                return Failure(LLMError(self.cut_message(received, "dropped the connection"), "stream_cut"))
            return Failure(
                LLMError(f"LLM endpoint {self.endpoint} closed the connection without answering", "stream_cut"),
                "closed the connection",
            )
        if isinstance(exc, openai.APIError):
            return self._error_event(exc, received)
        return Failure(LLMError(f"LLM request to {self.endpoint} failed: {type(exc).__name__}: {self.clean(str(exc))}", "error"))

    def _error_event(self, exc: openai.APIError, received: int) -> Failure:
        """An error event inside a 200 stream (vLLM and others send these when generation fails)."""
        text = self.clean(exc.message)
        if CONTEXT_WORDS.search(text):
            return Failure(self.context_error(text))
        if received:
            return Failure(LLMError(self.cut_message(received, f"reported an error: {text}"), "stream_cut"))
        return Failure(LLMError(f"LLM endpoint {self.endpoint} reported an error: {text}", "server"), "reported an error")

    def status_error(self, exc: openai.APIStatusError) -> Failure:
        """An HTTP error status as its kind; 429 and 5xx are retryable."""
        status = exc.status_code
        text = self.clean(server_text(exc))
        # Error codes carry the meaning when the wording does not (OpenAI's context_length_exceeded, llama.cpp's types).
        body = exc.body if isinstance(exc.body, dict) else {}
        probe = f"{text} {body.get('code', '')} {body.get('type', '')}"
        if status == 429:
            return Failure(
                LLMError(
                    f"LLM endpoint {self.endpoint} is rate limiting (HTTP 429){self._after()}; try again later: {text}",
                    "rate_limit",
                ),
                "429",
                retry_after(exc.response),
            )
        if status >= 500 and not CONTEXT_WORDS.search(probe):
            return Failure(
                LLMError(f"LLM endpoint {self.endpoint} failed with HTTP {status}{self._after()}: {text}", "server"),
                str(status),
                retry_after(exc.response),
            )
        if status in (401, 403):
            hint = "check ASSISTANT_LLM_API_KEY" if self.api_key else "it needs one; set ASSISTANT_LLM_API_KEY"
            return Failure(LLMError(f"LLM endpoint {self.endpoint} rejected the API key (HTTP {status}); {hint}", "auth"))
        if CONTEXT_WORDS.search(probe):
            return Failure(self.context_error(text))
        if status == 404 and "model" not in probe.lower():
            # A bare 404 is as often a base URL without its /v1 suffix as an unknown model.
            return Failure(
                LLMError(
                    f"LLM endpoint {self.endpoint} answered 404 for chat completions: model '{self.model}' "
                    "is not served (ASSISTANT_LLM_MODEL) or the base URL is wrong "
                    "(it usually ends in /v1; ASSISTANT_LLM_BASE_URL)",
                    "model",
                )
            )
        if status == 404 or MODEL_MISSING.search(probe):
            return Failure(LLMError(self.model_message(text), "model"))
        return Failure(LLMError(f"LLM endpoint {self.endpoint} refused the request (HTTP {status}): {text}", "request"))

    def model_message(self, detail: str) -> str:
        """The message for a model the endpoint does not serve."""
        return f"model '{self.model}' is not served by {self.endpoint} ({detail}); check ASSISTANT_LLM_MODEL"

    def context_error(self, text: str) -> LLMError:
        """The error for a prompt larger than the model's context."""
        return LLMError(
            f"the prompt does not fit the context of '{self.model}' at {self.endpoint} ({text}); "
            "lower ASSISTANT_CONTEXT_WINDOW or ask about fewer papers",
            "context",
        )

    def cut_message(self, received: int, what: str) -> str:
        """The message for a stream that broke after some text."""
        return f"LLM endpoint {self.endpoint} {what} after {received} characters; the answer is incomplete"

    def deadline_message(self, received: int) -> str:
        """The message for an answer that ran past its total deadline."""
        what = f"did not finish within the {self.deadline:g} s deadline (ASSISTANT_LLM_DEADLINE)"
        if not received:
            return f"LLM endpoint {self.endpoint} {what}; no answer"
        return self.cut_message(received, what)

    def length_message(self, received: int, max_tokens: int) -> str:
        """The message for a server that kept writing past the tokens asked for."""
        return self.cut_message(received, f"kept writing past the {max_tokens} tokens asked for (ASSISTANT_MAX_ANSWER_TOKENS)")

    def _after(self) -> str:
        """' after N retries' when retries were made."""
        return f" after {self.max_retries} retries" if self.max_retries else ""

    def clean(self, text: str) -> str:
        """Server text made safe for a one-line message: key redacted, one line, bounded."""
        if self.api_key:
            text = text.replace(self.api_key, "[redacted]")
        if self.redactor is not None:
            text = self.redactor.redact(text)
        text = SECRET_LIKE.sub("[redacted]", text)
        text = " ".join(visible(text).split())  # a server's escape sequences must not reach a terminal through a log
        return text[:200] + ("..." if len(text) > 200 else "") if text else "no details"


def server_text(exc: openai.APIStatusError) -> str:
    """The error text a server sent, from its JSON body or the raw response."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message is None and isinstance(body.get("detail"), (str, list)):
            message = body["detail"]
        if message is not None:
            return message if isinstance(message, str) else json.dumps(message)
    if isinstance(body, str):
        return body
    try:
        return exc.response.text
    except Exception:
        return exc.message


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks us to wait (Retry-After in seconds or as a date), if it says."""
    headers = response.headers
    try:
        if "retry-after-ms" in headers:
            return float(headers["retry-after-ms"]) / 1000
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            return parsedate_to_datetime(value).timestamp() - time.time()
    except (ValueError, TypeError, OverflowError):
        return None
