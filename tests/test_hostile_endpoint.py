"""A hostile endpoint must not leak the key, hang the answer, or blow up the citation check (issue 13, items 2, 5, 6).

Each case runs against the loopback fault server, which streams what the case needs: the Authorization header
echoed into the answer and split across chunks, one token a second forever, a 100 KB answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from assistant import build_assistant
from assistant.errors import LLMError
from assistant.llm.client import LLMClient
from assistant.llm.limits import CHARS_PER_TOKEN, answer_cap
from assistant.llm.redact import REDACTED, WINDOW
from tests.conftest import make_settings
from tests.faultserver import FaultServer, Seen, Step, chunk, completion, endless, text_events

KEY = "sk-canary-hostile-4d2e9b"
MESSAGES = [{"role": "user", "content": "What is DSPy?"}]
MODEL = "fault-model"
QUESTION = "What is DSPy?"
HANG_GUARD = 60.0  # seconds before a test calls a stream that has not ended a hang (the suite must not wait forever)


def leaks(text: str, secret: str = KEY) -> list[str]:
    """Every piece of `secret` WINDOW characters long that `text` still holds."""
    return [secret[i : i + WINDOW] for i in range(len(secret) - WINDOW + 1) if secret[i : i + WINDOW] in text]


def echo_answer(seen: Seen) -> str:
    """What an endpoint that writes the request's credentials into its answer says."""
    header = seen.headers.get("Authorization", "")
    key = header.removeprefix("Bearer ")
    return (f"Your header was {header}. The key alone: {key}; its tail: {key[3:]}; its middle: {key[5:17]}. "
            "DSPy compiles declarative pipelines [1].")  # fmt: skip


def drain(response: Any) -> tuple[list[str], LLMError | None]:
    """Iterate a streamed response in a thread (so a stream that never ends fails the test instead of hanging it)."""
    got: list[str] = []
    failure: list[LLMError] = []

    def run() -> None:
        try:
            got.extend(response)
        except LLMError as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(HANG_GUARD)
    assert not worker.is_alive(), f"the stream was still open after {HANG_GUARD:g} s with {len(''.join(got))} characters"
    return got, (failure[0] if failure else None)


# -- item 2: the key in the answer -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 13, 64, 10_000])
def test_key_echoed_into_the_stream_is_redacted_however_it_is_split(size: int) -> None:
    with FaultServer(Step("stream", respond=lambda seen: text_events(echo_answer(seen), size))) as srv:
        response = LLMClient(srv.base_url, MODEL, KEY, max_retries=0).stream(MESSAGES, 500)
        got, error = drain(response)
    text = "".join(got)
    assert error is None
    assert srv.seen[0].headers["Authorization"] == f"Bearer {KEY}"  # the server did have the key to echo
    assert not leaks(text) and not leaks(response.text), text
    assert text.startswith(f"Your header was Bearer {REDACTED}.") and text.endswith("DSPy compiles declarative pipelines [1].")
    assert all(not leaks(delta) for delta in got)


def test_key_echoed_before_a_break_is_redacted_in_the_partial_text() -> None:
    def respond(seen: Seen) -> list[str]:
        return [chunk(p) for p in ("Echo: Bearer ", KEY[:6], KEY[6:11])]

    with FaultServer(Step("cut", respond=respond)) as srv:
        response = LLMClient(srv.base_url, MODEL, KEY, max_retries=0).stream(MESSAGES, 500)
        got, error = drain(response)
    assert error is not None and error.kind == "stream_cut"
    assert "".join(got) == response.text == "Echo: Bearer " + REDACTED


def test_key_in_a_whole_completion_and_in_an_error_event_is_redacted() -> None:
    with FaultServer(Step("json", respond=lambda seen: completion(echo_answer(seen)))) as srv:
        done = LLMClient(srv.base_url, MODEL, KEY, max_retries=0).complete(MESSAGES, 500)
    assert not leaks(done.text) and REDACTED in done.text
    event = '{"error": {"message": "bad request from key ' + KEY[2:] + '"}}'
    with FaultServer(Step("stream", events=[chunk("Some text"), event])) as srv:
        got, error = drain(LLMClient(srv.base_url, MODEL, KEY, max_retries=0).stream(MESSAGES, 500))
    assert error is not None and not leaks(str(error)) and "".join(got) == "Some text"


def test_every_configured_secret_is_redacted(tmp_path: Path) -> None:
    """The embedding endpoint's key is a secret too, and a server may know it (one gateway serving both)."""
    other = "emb-secret-77aa31c0"
    settings = make_settings(tmp_path, llm_base_url="http://127.0.0.1:1/v1", llm_api_key=KEY, embedding_api_key=other)
    with FaultServer(Step("stream", events=text_events(f"The embedding key is {other}.", 3))) as srv:
        client = LLMClient.from_settings(settings.model_copy(update={"llm_base_url": srv.base_url}))
        got, error = drain(client.stream(MESSAGES, 500))
    assert error is None and "".join(got) == f"The embedding key is {REDACTED}."


# -- item 5: a total deadline and a token cap ---------------------------------------------------------------------


def test_a_stream_that_never_ends_stops_at_the_deadline() -> None:
    """One token every 0.2 s forever, each read well inside the timeout: the deadline ends it, the text is kept."""
    with FaultServer(Step("stream", respond=lambda seen: endless(" tick"), pace=0.2)) as srv:
        client = LLMClient(srv.base_url, MODEL, KEY, timeout=3, deadline=1.0, max_retries=0)
        response = client.stream(MESSAGES, 10_000)
        got, error = drain(response)
    assert error is not None and error.kind == "deadline", error
    assert "ASSISTANT_LLM_DEADLINE" in str(error) and "the answer is incomplete" in str(error)
    assert "".join(got) == response.text and response.text.startswith(" tick")
    assert response.usage is not None  # a cut answer still reports what it cost


def test_a_server_that_ignores_max_tokens_is_cut_at_the_cap() -> None:
    with FaultServer(Step("stream", respond=lambda seen: endless(" word"))) as srv:
        response = LLMClient(srv.base_url, MODEL, KEY, max_retries=0).stream(MESSAGES, 5)
        _got, error = drain(response)
    assert error is not None and error.kind == "length" and "5 tokens asked for" in str(error)
    assert 0 < len(response.text) <= answer_cap(5) * CHARS_PER_TOKEN + 64


def test_one_huge_delta_is_trimmed_to_the_cap() -> None:
    with FaultServer(Step("stream", events=[chunk("x " * 50_000), chunk(finish="stop"), "[DONE]"])) as srv:
        response = LLMClient(srv.base_url, MODEL, KEY, max_retries=0).stream(MESSAGES, 20)
        _, error = drain(response)
    assert error is not None and error.kind == "length"
    assert len(response.text) <= answer_cap(20) * CHARS_PER_TOKEN


def test_a_whole_completion_past_the_cap_is_trimmed() -> None:
    with FaultServer(Step("json", body=completion("word " * 20_000))) as srv:
        done = LLMClient(srv.base_url, MODEL, KEY, max_retries=0).complete(MESSAGES, 20)
    assert len(done.text) <= answer_cap(20) * CHARS_PER_TOKEN


# -- items 5 and 6 through the pipeline: the cut answer is kept, checked, and the check stays bounded --------------


class CountingEmbedder:
    """The real embedder, counting the texts each `embed` call is given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[int] = []

    @property
    def dim(self) -> int:
        return int(self.inner.dim)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(len(texts))
        return list(self.inner.embed(texts))

    def embed_query(self, text: str) -> list[float]:
        return list(self.inner.embed_query(text))


def distinct_sentences(size: int) -> str:
    """About `size` characters of sentences that differ from each other, each citing source 1."""
    parts: list[str] = []
    i = 0
    while sum(map(len, parts)) < size:
        variant, module = i * 7919 % 10007, i % 97
        parts.append(f"Finding {i} says DSPy pipeline variant {variant} improves module {module} by {i % 13} points [1]. ")
        i += 1
    return "".join(parts)


@pytest.fixture
def ask_with(sample_dir: Path, embedder: Any) -> Iterator[Callable[..., Any]]:
    """Ask the sample store's assistant a question with the LLM at a fault server playing `steps`."""
    servers: list[FaultServer] = []

    def ask(*steps: Step, counting: CountingEmbedder | None = None, **overrides: Any) -> Any:
        srv = FaultServer(*steps, models=[MODEL]).start()
        servers.append(srv)
        s = make_settings(sample_dir, llm_base_url=srv.base_url, llm_model=MODEL, llm_max_retries=0, **overrides)
        return build_assistant(s, embedder=counting or embedder).ask(QUESTION)

    yield ask
    for srv in servers:
        srv.stop()


@pytest.mark.slow
def test_a_100kb_answer_is_checked_with_a_bounded_number_of_embeddings(ask_with: Callable[..., Any], embedder: Any) -> None:
    counting = CountingEmbedder(embedder)
    text = distinct_sentences(100_000)
    answer = ask_with(Step("stream", events=text_events(text, 400)), counting=counting, max_answer_tokens=300)
    assert answer.incomplete and answer.error and "300 tokens asked for" in answer.error
    assert answer.citations and answer.text and len(answer.text) <= answer_cap(300) * CHARS_PER_TOKEN
    # Claims are embedded in one call with the cited sentences; the cap bounds how many there are.
    assert len(counting.calls) <= 2, counting.calls
    assert sum(counting.calls) <= 120, counting.calls


@pytest.mark.slow
def test_an_answer_past_its_deadline_is_kept_cut_and_checked(ask_with: Callable[..., Any]) -> None:
    def respond(seen: Seen) -> Iterator[str]:
        yield chunk("DSPy is a programming model that compiles declarative language model calls [1].")
        yield from endless(" More")

    answer = ask_with(Step("stream", respond=respond, pace=0.2), llm_deadline=1.0, llm_timeout=5)
    assert answer.incomplete and answer.error and "ASSISTANT_LLM_DEADLINE" in answer.error
    assert answer.text.startswith("DSPy is a programming model")
    assert [c.n for c in answer.citations] == [1] and answer.citations[0].quotes
