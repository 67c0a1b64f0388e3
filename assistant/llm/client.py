"""Client for any OpenAI-compatible chat endpoint, with retries and one-line errors."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Generator, Iterator
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import httpx
import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from assistant.errors import ConfigError, LLMError
from assistant.models import Usage

if TYPE_CHECKING:
    from assistant.config import Settings

log = logging.getLogger("assistant.llm.client")

BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 30.0
CONNECT_TIMEOUT_CAP = 10.0
# The SDK insists on a key; local servers (llama.cpp, Ollama, vLLM) ignore it.
NO_KEY = "not-needed"
CONTEXT_WORDS = re.compile(
    r"context[ _-]?(length|window|size)|maximum context|exceed_context|exceeds? the available context|too many tokens"
    r"|prompt is too long|input is too large|requested tokens",
    re.IGNORECASE,
)
MODEL_MISSING = re.compile(r"model.*(not found|does not exist|not exist|unknown|not available|not loaded)|unknown model", re.I)
SECRET_LIKE = re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_\-]{8,}")
# What talking to an endpoint can raise; anything else is a bug and should surface as one.
TRANSPORT_ERRORS = (openai.APIError, httpx.HTTPError, httpx.StreamError, json.JSONDecodeError, UnicodeDecodeError)


def count_tokens(text: str) -> int:
    """Tokens in `text` by the tiktoken encoding llama-index uses."""
    from llama_index.core.utils import get_tokenizer

    return len(get_tokenizer()(text))


def estimate_prompt_tokens(messages: list[dict[str, str]]) -> int:
    """Tokens of a chat prompt, with the few tokens of role markup each message costs."""
    return sum(count_tokens(m.get("content", "")) + 4 for m in messages) + 2


class _Retry(Exception):
    """Internal: a failure worth another attempt, carrying the final error and the server's wait hint."""

    def __init__(self, error: LLMError, what: str, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.what = what
        self.retry_after = retry_after


class LLMClient:
    """Streams chat completions from an OpenAI-compatible endpoint and explains its failures."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout: float = 60,
        max_retries: int = 3,
        temperature: float = 0.1,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.temperature = temperature
        self.last_usage: Usage | None = None
        self._api_key = api_key or None
        self._stream_options = True
        self._sleep: Callable[[float], None] = time.sleep
        parts = urlsplit(self.base_url)
        # Credentials in the URL must not reach any message either.
        self._host = parts.hostname or self.base_url
        self._host_port = f"{self._host}:{parts.port}" if parts.port else self._host
        self.endpoint = parts._replace(netloc=self._host_port).geturl() if parts.scheme else self.base_url
        # Our own loop retries, so that every retry is logged; the SDK must not retry as well.
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or NO_KEY,
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, CONNECT_TIMEOUT_CAP)),
            max_retries=0,
            http_client=http_client,
        )

    @classmethod
    def from_settings(cls, settings: Settings, http_client: httpx.Client | None = None) -> LLMClient:
        """A client for the endpoint the settings name."""
        if not settings.llm_base_url:
            raise ConfigError("no LLM endpoint configured; set ASSISTANT_LLM_BASE_URL")
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        return cls(settings.llm_base_url, settings.llm_model, key, timeout=settings.llm_timeout,
                   max_retries=settings.llm_max_retries, temperature=settings.llm_temperature, http_client=http_client)

    def describe(self) -> str:
        """Model and endpoint host for status lines, e.g. 'gemma @ 127.0.0.1:8080'."""
        return f"{self.model} @ {self._host_port}"

    def __repr__(self) -> str:
        return f"LLMClient({self.describe()!r})"

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` by the tiktoken encoding llama-index uses."""
        return count_tokens(text)

    def stream(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str]:
        """Yield the answer's text deltas as they arrive; `last_usage` is set once the stream ends or breaks."""
        self.last_usage = None
        attempt = 0
        while True:
            pieces: list[str] = []
            try:
                usage = yield from self._stream_once(messages, max_tokens, pieces)
                break
            except _Retry as retry:
                if not retry.what or attempt >= self.max_retries:
                    raise retry.error from None
                attempt += 1
                self._wait(attempt, retry)
            except LLMError:
                # A broken answer still cost tokens; callers report them beside the partial text.
                self.last_usage = self._estimate(messages, "".join(pieces)) if pieces else None
                raise
        self.last_usage = usage or self._estimate(messages, "".join(pieces))

    def complete(self, messages: list[dict[str, str]], max_tokens: int) -> str:
        """The whole answer at once, with the same retries and errors as `stream`."""
        self.last_usage = None
        attempt = 0
        while True:
            try:
                response = self._client.chat.completions.create(
                    model=self.model, messages=messages, max_tokens=max_tokens, temperature=self.temperature  # type: ignore[arg-type]
                )
                break
            except TRANSPORT_ERRORS as exc:
                retry = self._classify(exc, 0)
                if not retry.what or attempt >= self.max_retries:
                    raise retry.error from None
                attempt += 1
                self._wait(attempt, retry)
        if not isinstance(response, ChatCompletion) or not getattr(response, "choices", None):
            raise LLMError(f"LLM endpoint {self.endpoint} sent an answer that is not a chat completion", "malformed")
        text = getattr(response.choices[0].message, "content", None) or ""
        self.last_usage = self._usage(getattr(response, "usage", None)) or self._estimate(messages, text)
        return text

    def check(self) -> list[str]:
        """Ask the endpoint which models it serves; raise kind 'model' when ours is not among them."""
        try:
            served = [m.id for m in self._client.models.list()]
        except TRANSPORT_ERRORS as exc:
            raise self._classify(exc, 0).error from None
        # An empty list means the server does not say; only a list without our model is a clear miss.
        if served and self.model not in served:
            shown = ", ".join(served[:5]) + (", ..." if len(served) > 5 else "")
            raise LLMError(self._model_message(f"it serves {shown}"), "model")
        return served

    def _stream_once(
        self, messages: list[dict[str, str]], max_tokens: int, pieces: list[str]
    ) -> Generator[str, None, Usage | None]:
        """One streamed request; returns the server's usage if it sent any, raises `_Retry` or `LLMError`."""
        try:
            stream = self._open_stream(messages, max_tokens)
        except TRANSPORT_ERRORS as exc:
            raise self._classify(exc, 0) from None
        usage: Usage | None = None
        finished = False
        chunks = 0
        try:
            for chunk in stream:
                chunks += 1
                # The SDK builds chunks without validating them, so the shape is checked here.
                choices = getattr(chunk, "choices", None) if isinstance(chunk, ChatCompletionChunk) else None
                chunk_usage = self._usage(getattr(chunk, "usage", None))
                if not isinstance(choices, list) and chunk_usage is None:
                    raise LLMError(f"LLM endpoint {self.endpoint} sent stream data that is not a completion chunk", "malformed")
                usage = chunk_usage or usage
                for choice in choices or []:
                    delta = getattr(choice, "delta", None)
                    text = getattr(delta, "content", None)
                    if isinstance(text, str) and text:
                        pieces.append(text)
                        yield text
                    if getattr(choice, "finish_reason", None):
                        finished = True
        except LLMError:
            raise
        except TRANSPORT_ERRORS as exc:
            if finished:
                # The answer was complete; only the trailing usage or [DONE] was lost.
                log.debug("LLM stream from %s broke after its finish reason: %s", self.endpoint, type(exc).__name__)
                return usage
            retry = self._classify(exc, len("".join(pieces)))
            # Once text reached the caller a retry would repeat it, so the failure is final.
            raise retry if not pieces else retry.error from None
        finally:
            stream.close()
        if not finished:
            self._unfinished(stream.response, chunks, pieces)
        return usage

    def _open_stream(self, messages: list[dict[str, str]], max_tokens: int) -> openai.Stream[ChatCompletionChunk]:
        """Send the streamed request, dropping `stream_options` once if the server rejects it."""
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                                  "temperature": self.temperature, "stream": True}
        if self._stream_options:
            try:
                return self._client.chat.completions.create(**kwargs, stream_options={"include_usage": True})
            except openai.APIStatusError as exc:
                if exc.status_code not in (400, 422) or "stream_options" not in _server_text(exc):
                    raise
                log.info("LLM endpoint %s rejects stream_options; asking without it", self.endpoint)
                self._stream_options = False
        return self._client.chat.completions.create(**kwargs)

    def _unfinished(self, response: httpx.Response, chunks: int, pieces: list[str]) -> NoReturn:
        """Raise the error for a stream that ended without a finish reason."""
        content_type = response.headers.get("content-type", "")
        if not chunks and "event-stream" not in content_type:
            raise LLMError(f"LLM endpoint {self.endpoint} answered with {content_type or 'no content type'}, "
                           "not an event stream", "malformed")
        if not pieces:
            # llama-cpp-python opens the stream and then fails silently when the prompt exceeds its context.
            raise LLMError(f"LLM endpoint {self.endpoint} ended the stream before sending any text (a prompt larger than "
                           "the server's context does this on llama.cpp; lower ASSISTANT_CONTEXT_WINDOW or use fewer papers)",
                           "stream_cut")
        raise LLMError(self._cut_message(len("".join(pieces)), "ended the stream without finishing"), "stream_cut")

    def _classify(self, exc: BaseException, received: int) -> _Retry:
        """Turn any failure into a one-line `LLMError`, wrapped as retryable or not."""
        if isinstance(exc, openai.APIStatusError):
            return self._status_error(exc)
        cause = exc.__cause__ if isinstance(exc, openai.APIConnectionError) and exc.__cause__ else exc
        if isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol)):
            return _Retry(LLMError(f"LLM endpoint {self.endpoint} is unreachable; is the server running? "
                                   "(ASSISTANT_LLM_BASE_URL)", "unreachable"), "unreachable")
        if isinstance(cause, httpx.TimeoutException) or isinstance(exc, openai.APITimeoutError):
            if received:
                return self._final(LLMError(self._cut_message(received, f"sent nothing for {self.timeout:g} s"), "stream_cut"))
            # Not retried: each attempt would wait the whole timeout again.
            return self._final(LLMError(f"LLM endpoint {self.endpoint} accepted the connection but did not answer within "
                                        f"{self.timeout:g} s (ASSISTANT_LLM_TIMEOUT)", "timeout"))
        if isinstance(cause, (json.JSONDecodeError, UnicodeDecodeError, openai.APIResponseValidationError)):
            return self._final(LLMError(f"LLM endpoint {self.endpoint} sent data that is not valid SSE JSON", "malformed"))
        if isinstance(cause, (httpx.TransportError, httpx.StreamError)):
            if received:
                return self._final(LLMError(self._cut_message(received, "dropped the connection"), "stream_cut"))
            return _Retry(LLMError(f"LLM endpoint {self.endpoint} closed the connection without answering", "stream_cut"),
                          "closed the connection")
        if isinstance(exc, openai.APIError):
            # An error event inside a 200 stream (vLLM and others send these when generation fails).
            text = self._clean(exc.message)
            if CONTEXT_WORDS.search(text):
                return self._final(self._context_error(text))
            if received:
                return self._final(LLMError(self._cut_message(received, f"reported an error: {text}"), "stream_cut"))
            return _Retry(LLMError(f"LLM endpoint {self.endpoint} reported an error: {text}", "server"), "reported an error")
        return self._final(LLMError(f"LLM request to {self.endpoint} failed: {type(exc).__name__}: {self._clean(str(exc))}",
                                    "error"))

    def _status_error(self, exc: openai.APIStatusError) -> _Retry:
        """Map an HTTP error status to its kind; 429 and 5xx are retryable."""
        status = exc.status_code
        text = self._clean(_server_text(exc))
        # Error codes carry the meaning when the wording does not (OpenAI's context_length_exceeded, llama.cpp's types).
        body = exc.body if isinstance(exc.body, dict) else {}
        probe = f"{text} {body.get('code', '')} {body.get('type', '')}"
        if status == 429:
            return _Retry(LLMError(f"LLM endpoint {self.endpoint} is rate limiting (HTTP 429){self._after()}; "
                                   f"try again later: {text}", "rate_limit"), "429", _retry_after(exc.response))
        if status >= 500:
            if CONTEXT_WORDS.search(probe):
                return self._final(self._context_error(text))
            return _Retry(LLMError(f"LLM endpoint {self.endpoint} failed with HTTP {status}{self._after()}: "
                                   f"{text}", "server"), str(status), _retry_after(exc.response))
        if status in (401, 403):
            hint = "check ASSISTANT_LLM_API_KEY" if self._api_key else "it needs one; set ASSISTANT_LLM_API_KEY"
            return self._final(LLMError(f"LLM endpoint {self.endpoint} rejected the API key (HTTP {status}); {hint}", "auth"))
        if CONTEXT_WORDS.search(probe):
            return self._final(self._context_error(text))
        if status == 404 and "model" not in probe.lower():
            # A bare 404 is as often a base URL without its /v1 suffix as an unknown model.
            return self._final(LLMError(f"LLM endpoint {self.endpoint} answered 404 for chat completions: model '{self.model}' "
                                        "is not served (ASSISTANT_LLM_MODEL) or the base URL is wrong "
                                        "(it usually ends in /v1; ASSISTANT_LLM_BASE_URL)", "model"))
        if status == 404 or MODEL_MISSING.search(probe):
            return self._final(LLMError(self._model_message(text), "model"))
        return self._final(LLMError(f"LLM endpoint {self.endpoint} refused the request (HTTP {status}): {text}", "request"))

    def _model_message(self, detail: str) -> str:
        """The message for a model the endpoint does not serve."""
        return f"model '{self.model}' is not served by {self.endpoint} ({detail}); check ASSISTANT_LLM_MODEL"

    def _context_error(self, text: str) -> LLMError:
        """The error for a prompt larger than the model's context."""
        return LLMError(f"the prompt does not fit the context of '{self.model}' at {self.endpoint} ({text}); "
                        "lower ASSISTANT_CONTEXT_WINDOW or ask about fewer papers", "context")

    def _cut_message(self, received: int, what: str) -> str:
        """The message for a stream that broke after some text."""
        return f"LLM endpoint {self.endpoint} {what} after {received} characters; the answer is incomplete"

    @staticmethod
    def _final(error: LLMError) -> _Retry:
        """Wrap an error that retrying cannot fix; an empty `what` stops the loops at once."""
        return _Retry(error, "")

    def _after(self) -> str:
        """' after N retries' when retries were made."""
        return f" after {self.max_retries} retries" if self.max_retries else ""

    def _wait(self, attempt: int, retry: _Retry) -> None:
        """Log and sleep before retry `attempt`, honouring the server's Retry-After up to a cap."""
        delay = min(BACKOFF_BASE * 2 ** (attempt - 1), BACKOFF_CAP)
        if retry.retry_after is not None:
            delay = min(max(retry.retry_after, 0.0), RETRY_AFTER_CAP)
        if retry.what.isdigit():
            log.warning("LLM endpoint answered %s; retry %d/%d in %.1fs", retry.what, attempt, self.max_retries, delay)
        else:
            log.warning("LLM endpoint %s %s; retry %d/%d in %.1fs", self.endpoint, retry.what, attempt, self.max_retries, delay)
        self._sleep(delay)

    def _clean(self, text: str) -> str:
        """Server text made safe for a one-line message: key redacted, one line, bounded."""
        if self._api_key:
            text = text.replace(self._api_key, "[redacted]")
        text = SECRET_LIKE.sub("[redacted]", text)
        text = " ".join(text.split())
        return text[:200] + ("..." if len(text) > 200 else "") if text else "no details"

    @staticmethod
    def _usage(raw: object) -> Usage | None:
        """Usage from the server's numbers, or None when it sent none."""
        prompt = getattr(raw, "prompt_tokens", None)
        completion = getattr(raw, "completion_tokens", None)
        if not isinstance(prompt, int) or not isinstance(completion, int):
            return None
        return Usage(prompt_tokens=prompt, completion_tokens=completion)

    def _estimate(self, messages: list[dict[str, str]], text: str) -> Usage:
        """Usage counted locally, for servers that report none."""
        return Usage(prompt_tokens=estimate_prompt_tokens(messages), completion_tokens=count_tokens(text) if text else 0)


def _server_text(exc: openai.APIStatusError) -> str:
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


def _retry_after(response: httpx.Response) -> float | None:
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
