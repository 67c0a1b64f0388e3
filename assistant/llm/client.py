"""Client for any OpenAI-compatible chat endpoint, with retries and one-line errors."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, NoReturn, TypedDict, Unpack
from urllib.parse import urlsplit

import httpx
import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from assistant.errors import ConfigError, LLMError
from assistant.llm.failures import TRANSPORT_ERRORS, Explainer, server_text
from assistant.llm.limits import CHARS_PER_TOKEN, AnswerLimits, answer_cap
from assistant.llm.protocol import Completion, Messages
from assistant.llm.redact import Redactor
from assistant.llm.response import StreamedResponse
from assistant.llm.retry import RetryPolicy, retry_call, retrying
from assistant.models import Usage

if TYPE_CHECKING:
    from assistant.config import Settings

log = logging.getLogger("assistant.llm.client")

CONNECT_TIMEOUT_CAP = 10.0
DEFAULT_DEADLINE = 120.0
# The SDK insists on a key; local servers (llama.cpp, Ollama, vLLM) ignore it.
NO_KEY = "not-needed"


class ClientOptions(TypedDict, total=False):
    """Keyword options of `LLMClient`; each has a default."""

    timeout: float
    deadline: float  # seconds for a whole answer, however fast each read is
    max_retries: int
    temperature: float
    http_client: httpx.Client | None
    sleep: Callable[[float], None]  # how retries wait; tests pass a recorder
    secrets: tuple[str, ...]  # more values to redact from what the endpoint sends (the key always is)


def count_tokens(text: str) -> int:
    """Tokens in `text` by the tiktoken encoding llama-index uses."""
    from llama_index.core.utils import get_tokenizer

    return len(get_tokenizer()(text))


def estimate_usage(messages: Messages, text: str) -> Usage:
    """Usage counted locally, for servers that report none: a few tokens of role markup per message."""
    prompt = sum(count_tokens(m.get("content", "")) + 4 for m in messages) + 2
    return Usage(prompt_tokens=prompt, completion_tokens=count_tokens(text) if text else 0)


def server_usage(raw: object) -> Usage | None:
    """Usage from the server's numbers, or None when it sent none."""
    prompt = getattr(raw, "prompt_tokens", None)
    completion = getattr(raw, "completion_tokens", None)
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


class LLMClient:
    """Streams chat completions from an OpenAI-compatible endpoint and explains its failures.

    Safe to share between threads: every call's text and usage travel with what it returns.
    """

    def __init__(self, base_url: str, model: str, api_key: str | None = None, **options: Unpack[ClientOptions]) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = float(options.get("timeout", 60))
        self.deadline = float(options.get("deadline", DEFAULT_DEADLINE))
        self.max_retries = max(0, int(options.get("max_retries", 3)))
        self.temperature = options.get("temperature", 0.1)
        self._stream_options = True
        parts = urlsplit(self.base_url)
        # Credentials in the URL must not reach any message either.
        host = parts.hostname or self.base_url
        self._host_port = f"{host}:{parts.port}" if parts.port else host
        self.endpoint = parts._replace(netloc=self._host_port).geturl() if parts.scheme else self.base_url
        # Whatever the endpoint sends back may echo the key (or URL credentials): redacted before anyone sees it.
        self.redactor = Redactor([api_key, parts.password, parts.username, *options.get("secrets", ())])
        self.explain = Explainer(
            self.endpoint, model, self.timeout, self.max_retries, api_key or None, deadline=self.deadline, redactor=self.redactor
        )
        self.retries = RetryPolicy(self.max_retries, self.endpoint, options.get("sleep", time.sleep))
        # The SDK's retries stay off: assistant/llm/retry.py says which tests need our own loop.
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or NO_KEY,
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, CONNECT_TIMEOUT_CAP)),
            max_retries=0,
            http_client=options.get("http_client"),
        )

    @classmethod
    def from_settings(cls, settings: Settings, http_client: httpx.Client | None = None) -> LLMClient:
        """A client for the endpoint the settings name."""
        if not settings.llm_base_url:
            raise ConfigError("no LLM endpoint configured; set ASSISTANT_LLM_BASE_URL")
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        others = tuple(s.get_secret_value() for s in (settings.embedding_api_key,) if s is not None)
        return cls(
            settings.llm_base_url,
            settings.llm_model,
            key,
            timeout=settings.llm_timeout,
            deadline=settings.llm_deadline,
            max_retries=settings.llm_max_retries,
            temperature=settings.llm_temperature,
            http_client=http_client,
            secrets=others,
        )

    def describe(self) -> str:
        """Model and endpoint host for status lines, e.g. 'gemma @ 127.0.0.1:8080'."""
        return f"{self.model} @ {self._host_port}"

    def __repr__(self) -> str:
        return f"LLMClient({self.describe()!r})"

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` by the tiktoken encoding llama-index uses."""
        return count_tokens(text)

    def stream(self, messages: Messages, max_tokens: int) -> StreamedResponse:
        """This answer's text deltas as they arrive (nothing is sent until iteration); its usage is on the response."""
        limits = AnswerLimits(self.deadline, max_tokens, self.count_tokens)
        chunks = retrying(self.retries, lambda: self._stream_once(messages, max_tokens, limits))
        return StreamedResponse(self.redactor.stream(chunks), lambda text: estimate_usage(messages, text))

    def complete(self, messages: Messages, max_tokens: int) -> Completion:
        """The whole answer at once with its usage, with the same retries and errors as `stream`."""
        response = retry_call(self.retries, lambda: self._create(messages, max_tokens))
        if not isinstance(response, ChatCompletion) or not getattr(response, "choices", None):
            raise LLMError(f"LLM endpoint {self.endpoint} sent an answer that is not a chat completion", "malformed")
        text = getattr(response.choices[0].message, "content", None) or ""
        if isinstance(text, str) and self.count_tokens(text) > answer_cap(max_tokens):
            text = text[: answer_cap(max_tokens) * CHARS_PER_TOKEN]  # a server that ignores max_tokens
        text = self.redactor.redact(text) if isinstance(text, str) else ""
        return Completion(text, server_usage(getattr(response, "usage", None)) or estimate_usage(messages, text))

    def check(self) -> list[str]:
        """Ask the endpoint which models it serves; raise kind 'model' when ours is not among them."""
        try:
            served = [m.id for m in self._client.models.list()]
        except TRANSPORT_ERRORS as exc:
            raise self.explain.classify(exc, 0).error from None
        # An empty list means the server does not say; only a list without our model is a clear miss.
        if served and self.model not in served:
            shown = ", ".join(served[:5]) + (", ..." if len(served) > 5 else "")
            raise LLMError(self.explain.model_message(f"it serves {shown}"), "model")
        return served

    def _create(self, messages: Messages, max_tokens: int) -> ChatCompletion:
        """One non-streamed request; raises `Failure`."""
        try:
            return self._client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens,
                temperature=self.temperature,
            )
        except TRANSPORT_ERRORS as exc:
            raise self.explain.classify(exc, 0) from None

    def _stream_once(self, messages: Messages, max_tokens: int, limits: AnswerLimits) -> Generator[str, None, Usage | None]:
        """One streamed request; returns the server's usage if it sent any, raises `Failure` before any text, else `LLMError`."""
        limits.start()
        if limits.expired():
            raise LLMError(self.explain.deadline_message(0), "deadline")
        try:
            stream = self._open_stream(messages, max_tokens)
        except TRANSPORT_ERRORS as exc:
            raise self.explain.classify(exc, 0) from None
        state = _StreamState(limits, self.explain)
        try:
            yield from state.read(stream)
        except LLMError:
            raise
        except TRANSPORT_ERRORS as exc:
            if state.finished:
                # The answer was complete; only the trailing usage or [DONE] was lost.
                log.debug("LLM stream from %s broke after its finish reason: %s", self.endpoint, type(exc).__name__)
                return state.usage
            failure = self.explain.classify(exc, state.received)
            # Once text reached the caller a retry would repeat it, so the failure is final.
            raise failure if not state.received else failure.error from None
        finally:
            stream.close()
        if not state.finished:
            self._unfinished(stream.response, state)
        return state.usage

    def _open_stream(self, messages: Messages, max_tokens: int) -> openai.Stream[ChatCompletionChunk]:
        """Send the streamed request, dropping `stream_options` once if the server rejects it."""
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            "stream": True,
        }
        if self._stream_options:
            try:
                return self._client.chat.completions.create(**kwargs, stream_options={"include_usage": True})
            except openai.APIStatusError as exc:
                if exc.status_code not in (400, 422) or "stream_options" not in server_text(exc):
                    raise
                log.info("LLM endpoint %s rejects stream_options; asking without it", self.endpoint)
                self._stream_options = False
        return self._client.chat.completions.create(**kwargs)

    def _unfinished(self, response: httpx.Response, state: _StreamState) -> NoReturn:
        """Raise the error for a stream that ended without a finish reason."""
        content_type = response.headers.get("content-type", "")
        if not state.chunks and "event-stream" not in content_type:
            raise LLMError(
                f"LLM endpoint {self.endpoint} answered with {content_type or 'no content type'}, not an event stream",
                "malformed",
            )
        if not state.received:
            # llama-cpp-python opens the stream and then fails silently when the prompt exceeds its context.
            raise LLMError(
                f"LLM endpoint {self.endpoint} ended the stream before sending any text (a prompt larger than "
                "the server's context does this on llama.cpp; lower ASSISTANT_CONTEXT_WINDOW or use fewer papers)",
                "stream_cut",
            )
        raise LLMError(self.explain.cut_message(state.received, "ended the stream without finishing"), "stream_cut")


class _StreamState:
    """What one streamed attempt has seen so far, within the answer's deadline and token cap."""

    def __init__(self, limits: AnswerLimits, explain: Explainer) -> None:
        self.limits = limits
        self.explain = explain
        self.usage: Usage | None = None
        self.finished = False
        self.chunks = 0
        self.received = 0  # characters of text

    def read(self, stream: openai.Stream[ChatCompletionChunk]) -> Generator[str, None, None]:
        """Yield the text of each chunk, checking its shape (the SDK builds chunks without validating them)."""
        for chunk in stream:
            self.chunks += 1
            choices = getattr(chunk, "choices", None) if isinstance(chunk, ChatCompletionChunk) else None
            chunk_usage = server_usage(getattr(chunk, "usage", None))
            if not isinstance(choices, list) and chunk_usage is None:
                raise LLMError(
                    f"LLM endpoint {self.explain.endpoint} sent stream data that is not a completion chunk", "malformed"
                )
            self.usage = chunk_usage or self.usage
            for choice in choices or []:
                yield from self._text(getattr(getattr(choice, "delta", None), "content", None))
                if getattr(choice, "finish_reason", None):
                    self.finished = True
            if not self.finished and self.limits.expired():
                raise LLMError(self.explain.deadline_message(self.received), "deadline")

    def _text(self, text: object) -> Generator[str, None, None]:
        """One delta's text, cut at the answer's token cap (then reading stops: the answer is incomplete)."""
        if not isinstance(text, str) or not text:
            return
        kept, over = self.limits.take(text)
        self.received += len(kept)
        if kept:
            yield kept
        if over:
            raise LLMError(self.explain.length_message(self.received, self.limits.max_tokens), "length")
