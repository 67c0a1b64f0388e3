"""LLM client failures against a fault-injecting loopback server and httpx.MockTransport; the API key never leaks."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.errors import ConfigError, LLMError
from assistant.llm.client import LLMClient
from assistant.llm.response import StreamedResponse
from tests.conftest import free_port, make_settings
from tests.faultserver import FaultServer, Step, chunk, completion, words_stream

CANARY = "sk-canary-DO-NOT-LEAK-123"
MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is attention?"}]
WORDS = ["Attention", " weighs", " tokens", "."]


@pytest.fixture(autouse=True)
def no_leak(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Capture everything the client logs and, after each test, require that the key appears nowhere in it."""
    caplog.set_level(logging.DEBUG, logger="assistant.llm.client")
    yield
    assert CANARY not in caplog.text


def client(url: str, *, retries: int = 3, timeout: float = 5, sleeps: list[float] | None = None, **kw: object) -> LLMClient:
    """A client with the canary key whose backoff sleeps are recorded instead of slept."""
    record = sleeps if sleeps is not None else []
    return LLMClient(url, "fault-model", CANARY, timeout=timeout, max_retries=retries, sleep=record.append, **kw)  # type: ignore[misc]


def fail(run: object, kind: str) -> LLMError:
    """Run `run()` and return the LLMError it raises, checking its kind and that it is one clean line."""
    with pytest.raises(LLMError) as info:
        run()  # type: ignore[operator]
    err = info.value
    assert err.kind == kind, str(err)
    text = str(err)
    assert CANARY not in text and "canary" not in text.lower()
    assert "\n" not in text and text
    # Server text must not ride along in a chained exception either.
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)
    return err


def drain(c: LLMClient, got: list[str] | None = None, responses: list[StreamedResponse] | None = None) -> str:
    """Consume a stream, keeping the deltas in `got` and the response (with its usage) in `responses`, so a test can
    see the partial text and what it cost after an error."""
    got = got if got is not None else []
    response = c.stream(MESSAGES, 50)
    if responses is not None:
        responses.append(response)
    for delta in response:
        got.append(delta)
    return "".join(got)


def err_body(message: str, **extra: object) -> dict[str, object]:
    """An OpenAI-style error body."""
    return {"error": {"message": message, **extra}}


# -- successes --------------------------------------------------------------------------------------


def test_stream_yields_deltas_and_server_usage() -> None:
    with FaultServer(Step("stream", events=words_stream(WORDS, usage={"prompt_tokens": 11, "completion_tokens": 4}))) as srv:
        c = client(srv.base_url)
        got: list[str] = []
        responses: list[StreamedResponse] = []
        assert drain(c, got, responses) == "Attention weighs tokens."
    # Deltas stream as they come, save for a tail that could be the start of the key (held until it is decided).
    assert "".join(got) == "".join(WORDS) and len(got) >= len(WORDS) - 1
    usage = responses[0].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (11, 4)
    assert responses[0].finished and responses[0].text == "Attention weighs tokens."
    sent = srv.seen[0]
    assert sent.path == "/v1/chat/completions" and sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["model"] == "fault-model" and sent.body["max_tokens"] == 50
    assert sent.headers["Authorization"] == f"Bearer {CANARY}"  # the key is sent, just never shown


def test_usage_is_estimated_when_server_sends_none() -> None:
    with FaultServer(Step("stream", events=words_stream(WORDS))) as srv:
        c = client(srv.base_url)
        responses: list[StreamedResponse] = []
        drain(c, responses=responses)
    usage = responses[0].usage
    assert usage is not None
    assert usage.completion_tokens == c.count_tokens("Attention weighs tokens.") > 0
    assert usage.prompt_tokens > c.count_tokens("What is attention?")


def test_stream_options_rejected_is_dropped_and_remembered(caplog: pytest.LogCaptureFixture) -> None:
    rejected = Step("json", 400, err_body("Unrecognized request argument supplied: stream_options"))
    ok = Step("stream", events=words_stream(WORDS))
    with FaultServer(rejected, ok) as srv:
        c = client(srv.base_url)
        assert drain(c) == "Attention weighs tokens."
        assert drain(c) == "Attention weighs tokens."
    assert ["stream_options" in s.body for s in srv.seen] == [True, False, False]
    assert "WARNING" not in [r.levelname for r in caplog.records]


def test_complete_returns_text_and_usage() -> None:
    with FaultServer(Step("json", 200, completion("A rewritten question?"))) as srv:
        c = client(srv.base_url)
        done = c.complete(MESSAGES, 30)
    assert done.text == "A rewritten question?"
    assert "stream" not in srv.seen[0].body or srv.seen[0].body["stream"] is False
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (7, 3)


# -- retries ----------------------------------------------------------------------------------------


def test_429_then_success_retries_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    limited = Step("json", 429, err_body(f"Rate limit reached for key {CANARY}"), headers={"Retry-After": "0"})
    with FaultServer(limited, Step("stream", events=words_stream(WORDS))) as srv:
        sleeps: list[float] = []
        c = client(srv.base_url, sleeps=sleeps)
        assert drain(c) == "Attention weighs tokens."
    assert len(srv.seen) == 2 and sleeps == [0.0]
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and r.name == "assistant.llm.client"]
    assert [r.getMessage() for r in warnings] == ["LLM endpoint answered 429; retry 1/3 in 0.0s"]


def test_429_forever_is_rate_limit_after_retries(caplog: pytest.LogCaptureFixture) -> None:
    limited = Step("json", 429, err_body(f"Too many requests from {CANARY}"), headers={"Retry-After": "1000"})
    with FaultServer(limited) as srv:
        sleeps: list[float] = []
        c = client(srv.base_url, retries=2, sleeps=sleeps)
        err = fail(lambda: drain(c), "rate_limit")
    assert len(srv.seen) == 3
    assert sleeps == [30.0, 30.0]  # Retry-After honoured but capped
    assert "429" in str(err) and "[redacted]" in str(err)
    assert sum(r.levelname == "WARNING" for r in caplog.records) == 2


def test_500_backs_off_exponentially_then_fails_as_server() -> None:
    with FaultServer(Step("json", 500, err_body("CUDA out of memory"))) as srv:
        sleeps: list[float] = []
        c = client(srv.base_url, retries=3, sleeps=sleeps)
        err = fail(lambda: drain(c), "server")
        assert len(srv.seen) == 4
        assert sleeps == [0.5, 1.0, 2.0]
        assert "HTTP 500" in str(err) and "CUDA out of memory" in str(err)
        fail(lambda: c.complete(MESSAGES, 10), "server")


def test_503_then_success() -> None:
    with FaultServer(Step("json", 503, "overloaded"), Step("stream", events=words_stream(WORDS))) as srv:
        c = client(srv.base_url)
        assert drain(c) == "Attention weighs tokens."
    assert len(srv.seen) == 2


def test_unreachable_is_retried_then_reported(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    sleeps: list[float] = []
    c = client(url, retries=1, sleeps=sleeps)
    err = fail(lambda: drain(c), "unreachable")
    assert str(err) == f"LLM endpoint {url} is unreachable; is the server running? (ASSISTANT_LLM_BASE_URL)"
    assert sleeps == [0.5]
    assert "unreachable; retry 1/1 in 0.5s" in caplog.text
    fail(lambda: c.complete(MESSAGES, 10), "unreachable")


# -- errors that are not retried ---------------------------------------------------------------------


def test_timeout_when_server_accepts_but_never_answers() -> None:
    with FaultServer(Step("hang")) as srv:
        c = client(srv.base_url, timeout=1)
        err = fail(lambda: drain(c), "timeout")
        assert "did not answer within 1 s" in str(err)
        assert len(srv.seen) == 1  # a timeout is not retried: each try would wait the whole timeout again


def test_401_is_auth_and_server_echo_of_key_is_redacted() -> None:
    body = err_body(f"Incorrect API key provided: {CANARY}. You can find your API key at ...", code="invalid_api_key")
    with FaultServer(Step("json", 401, body)) as srv:
        c = client(srv.base_url)
        err = fail(lambda: drain(c), "auth")
        assert "ASSISTANT_LLM_API_KEY" in str(err) and "401" in str(err)
        fail(lambda: c.complete(MESSAGES, 10), "auth")
        assert len(srv.seen) == 2


def test_key_without_sk_prefix_is_redacted_too(caplog: pytest.LogCaptureFixture) -> None:
    key = "plain-canary-key-7f3a9"
    with FaultServer(Step("json", 500, err_body(f"upstream rejected {key}"))) as srv:
        c = LLMClient(srv.base_url, "fault-model", key, max_retries=1, sleep=lambda s: None)
        err = fail(lambda: drain(c), "server")
    assert key not in str(err) and "[redacted]" in str(err) and key not in caplog.text


def test_403_without_key_says_one_is_needed() -> None:
    with FaultServer(Step("json", 403, err_body("forbidden"))) as srv:
        c = LLMClient(srv.base_url, "fault-model", None, max_retries=0)
        err = fail(lambda: list(c.stream(MESSAGES, 5)), "auth")
    assert "set ASSISTANT_LLM_API_KEY" in str(err)
    assert srv.seen[0].headers["Authorization"] == "Bearer not-needed"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "The model `nope` does not exist or you do not have access to it."),  # OpenAI, vLLM
        (404, 'model "nope" not found, try pulling it first'),  # Ollama
        (400, "model 'nope' not found"),  # LM Studio style
    ],
)
def test_unknown_model(status: int, message: str) -> None:
    with FaultServer(Step("json", status, err_body(message, code="model_not_found"))) as srv:
        c = LLMClient(srv.base_url, "nope", CANARY, max_retries=0)
        err = fail(lambda: list(c.stream(MESSAGES, 5)), "model")
    assert "'nope'" in str(err) and "ASSISTANT_LLM_MODEL" in str(err)


def test_bare_404_points_at_the_base_url_too() -> None:
    with FaultServer(Step("json", 404, "Not Found", content_type="text/plain")) as srv:
        err = fail(lambda: client(srv.base_url).complete(MESSAGES, 5), "model")
    assert "ends in /v1" in str(err) and "ASSISTANT_LLM_MODEL" in str(err)


def test_check_reports_a_model_the_server_does_not_list() -> None:
    models = {"object": "list", "data": [{"id": "gemma-3-270m", "object": "model", "owned_by": "me"}]}
    with FaultServer(Step("json", 200, models)) as srv:
        assert LLMClient(srv.base_url, "gemma-3-270m", CANARY).check() == ["gemma-3-270m"]
        fail(lambda: LLMClient(srv.base_url, "nope", CANARY).check(), "model")


@pytest.mark.parametrize(
    "body",
    [
        err_body(
            "This model's maximum context length is 4096 tokens. However, you requested 5020 tokens.",
            code="context_length_exceeded",
        ),  # OpenAI, llama-cpp-python, vLLM
        err_body("the request exceeds the available context size, try increasing it", type="exceed_context_size_error"),
        err_body("prompt too long", code="context_length_exceeded"),  # only the code says so
    ],
)
def test_context_overflow(body: dict[str, object]) -> None:
    with FaultServer(Step("json", 400, body)) as srv:
        c = client(srv.base_url)
        err = fail(lambda: drain(c), "context")
        assert "ASSISTANT_CONTEXT_WINDOW" in str(err)
        assert len(srv.seen) == 1


def test_other_400_is_a_request_error() -> None:
    with FaultServer(Step("json", 400, err_body("temperature must be between 0 and 2"))) as srv:
        err = fail(lambda: drain(client(srv.base_url)), "request")
    assert "temperature must be" in str(err)


# -- broken streams ----------------------------------------------------------------------------------


def test_stream_cut_half_way_keeps_partial_text() -> None:
    with FaultServer(Step("cut", events=[chunk(w) for w in WORDS[:2]])) as srv:
        c = client(srv.base_url)
        got: list[str] = []
        responses: list[StreamedResponse] = []
        err = fail(lambda: drain(c, got, responses), "stream_cut")
        assert "".join(got) == "".join(WORDS[:2])  # regrouped at most by the key hold-back
        assert "incomplete" in str(err)
        usage = responses[0].usage
        assert usage is not None and usage.completion_tokens == c.count_tokens("".join(WORDS[:2]))
        assert not responses[0].finished
        assert len(srv.seen) == 1  # text already reached the caller: a retry would repeat it


def test_stream_without_finish_reason_is_cut() -> None:
    with FaultServer(Step("stream", events=[chunk(w) for w in WORDS])) as srv:
        got: list[str] = []
        fail(lambda: drain(client(srv.base_url), got), "stream_cut")
    assert "".join(got) == "".join(WORDS)


def test_drop_after_finish_reason_keeps_the_answer() -> None:
    with FaultServer(Step("cut", events=[chunk("Done"), chunk(finish="stop")])) as srv:
        c = client(srv.base_url)
        responses: list[StreamedResponse] = []
        assert drain(c, responses=responses) == "Done"
    usage = responses[0].usage
    assert usage is not None and usage.completion_tokens > 0


def test_drop_before_any_text_is_retried() -> None:
    with FaultServer(Step("cut", events=[]), Step("close"), Step("stream", events=words_stream(WORDS))) as srv:
        assert drain(client(srv.base_url)) == "Attention weighs tokens."
    assert len(srv.seen) == 3


def test_empty_stream_hints_at_llama_cpp_context() -> None:
    # What llama-cpp-python really does when a streamed prompt exceeds n_ctx: 200, event-stream, no events.
    with FaultServer(Step("stream", events=[])) as srv:
        err = fail(lambda: drain(client(srv.base_url)), "stream_cut")
    assert "ASSISTANT_CONTEXT_WINDOW" in str(err)


def test_error_event_mid_stream() -> None:
    events = [chunk("Half"), json.dumps(err_body(f"generation failed for {CANARY}"))]
    with FaultServer(Step("stream", events=events)) as srv:
        got: list[str] = []
        err = fail(lambda: drain(client(srv.base_url), got), "stream_cut")
    assert got == ["Half"] and "generation failed" in str(err)


@pytest.mark.parametrize("event", ["{not json", "null", '{"unexpected": true}'])
def test_malformed_stream_data(event: str) -> None:
    with FaultServer(Step("stream", events=[event])) as srv:
        fail(lambda: drain(client(srv.base_url)), "malformed")


def test_json_instead_of_event_stream_is_malformed() -> None:
    with FaultServer(Step("json", 200, {"hello": "world"})) as srv:
        err = fail(lambda: drain(client(srv.base_url)), "malformed")
    assert "application/json" in str(err)


def test_complete_with_non_completion_body_is_malformed() -> None:
    with FaultServer(Step("json", 200, b"<html>proxy error</html>", content_type="text/html")) as srv:
        fail(lambda: client(srv.base_url).complete(MESSAGES, 5), "malformed")


# -- httpx.MockTransport ------------------------------------------------------------------------------


def mocked(handler: object, retries: int = 0, url: str = "http://llm.invalid:8080/v1") -> LLMClient:
    """A client whose HTTP goes to `handler` instead of the network."""
    http = httpx.Client(transport=httpx.MockTransport(handler))  # type: ignore[arg-type]
    return LLMClient(url, "mock-model", CANARY, max_retries=retries, http_client=http, sleep=lambda s: None)


def sse(*events: str) -> bytes:
    """Events framed as server-sent events."""
    return b"".join(f"data: {e}\n\n".encode() for e in events)


def test_mock_stream_success() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {CANARY}"
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse(*words_stream(WORDS)))

    c = mocked(handler)
    assert "".join(c.stream(MESSAGES, 20)) == "".join(WORDS)


def test_mock_connect_error_is_unreachable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"Name or service not known ({CANARY})", request=request)

    err = fail(lambda: list(mocked(handler, retries=2).stream(MESSAGES, 5)), "unreachable")
    assert "http://llm.invalid:8080/v1" in str(err)


def test_mock_read_error_mid_stream_is_cut() -> None:
    def body() -> Iterator[bytes]:
        yield sse(chunk("Par"), chunk("tial"))
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    got: list[str] = []
    c = mocked(handler, retries=3)
    fail(lambda: drain(c, got), "stream_cut")
    assert "".join(got) == "Partial"


def test_mock_read_timeout_mid_stream_is_cut() -> None:
    def body() -> Iterator[bytes]:
        yield sse(chunk("Slow"))
        raise httpx.ReadTimeout("timed out")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    err = fail(lambda: list(mocked(handler).stream(MESSAGES, 5)), "stream_cut")
    assert "incomplete" in str(err)


def test_mock_invalid_utf8_is_malformed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"data: \xff\xfe{}\n\n")

    fail(lambda: list(mocked(handler).stream(MESSAGES, 5)), "malformed")


def test_url_credentials_never_shown() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json=err_body("no"))

    c = mocked(handler, url=f"http://user:{CANARY}@llm.invalid:8080/v1")
    assert c.describe() == "mock-model @ llm.invalid:8080"
    assert CANARY not in repr(c)
    err = fail(lambda: c.complete(MESSAGES, 5), "auth")
    assert "http://llm.invalid:8080/v1" in str(err)


# -- construction -------------------------------------------------------------------------------------


def test_describe_shows_model_and_host_only() -> None:
    assert LLMClient("http://127.0.0.1:8080/v1/", "gemma", CANARY).describe() == "gemma @ 127.0.0.1:8080"
    assert LLMClient("https://api.openai.com/v1", "gpt-4o-mini", CANARY).describe() == "gpt-4o-mini @ api.openai.com"


def test_from_settings(tmp_path: Path) -> None:
    s = make_settings(
        tmp_path,
        llm_base_url="http://127.0.0.1:9/v1",
        llm_model="m",
        ASSISTANT_LLM_API_KEY=CANARY,
        llm_timeout=7,
        llm_max_retries=1,
        llm_temperature=0.3,
    )
    c = LLMClient.from_settings(s)
    assert (c.model, c.timeout, c.max_retries, c.temperature) == ("m", 7.0, 1, 0.3)
    assert c.explain.api_key == CANARY
    assert CANARY not in repr(c) and CANARY not in c.describe()
    with pytest.raises(ConfigError):
        LLMClient.from_settings(make_settings(tmp_path))
