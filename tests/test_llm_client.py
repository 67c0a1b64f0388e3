"""The LLM client against a real llama.cpp OpenAI-compatible server serving Gemma 3 270M."""

from __future__ import annotations

import logging
import threading

import httpx
import pytest

from assistant.errors import LLMError
from assistant.llm.client import LLMClient
from tests.llm_fixtures import LlamaServer

pytestmark = pytest.mark.llm

CANARY = "sk-canary-DO-NOT-LEAK-123"
QUESTION = [{"role": "user", "content": "Explain in two sentences what a neural network is."}]
# A prompt that keeps a small model talking for far longer than the test lets it.
LONG = [{"role": "user", "content": "Count from 1 to 500, one number per line."}]


def test_stream_yields_several_deltas_and_usage(llama_server: LlamaServer) -> None:
    c = LLMClient(llama_server.base_url, llama_server.model, CANARY, timeout=120)
    response = c.stream(QUESTION, 24)
    assert response.usage is None  # nothing is sent before iteration
    deltas = list(response)
    assert len(deltas) >= 3, deltas
    assert all(isinstance(d, str) and d for d in deltas)
    assert "".join(deltas).strip() and response.text == "".join(deltas)
    # llama-cpp-python sends no usage in streams, so these are the client's tiktoken estimates.
    assert response.usage is not None
    assert response.usage.prompt_tokens >= c.count_tokens(QUESTION[0]["content"])
    assert 0 < response.usage.completion_tokens <= 24 * 4


def test_complete_reports_server_usage(llama_server: LlamaServer) -> None:
    c = LLMClient(llama_server.base_url, llama_server.model, timeout=120)
    done = c.complete(QUESTION, 12)
    assert isinstance(done.text, str)
    assert done.usage.prompt_tokens > 0
    assert done.usage.completion_tokens <= 12


def test_check_lists_the_alias(llama_server: LlamaServer) -> None:
    assert LLMClient(llama_server.base_url, llama_server.model).check() == [llama_server.model]
    with pytest.raises(LLMError) as info:
        LLMClient(llama_server.base_url, "no-such-model").check()
    assert info.value.kind == "model"


def test_unknown_model_is_served_anyway(llama_server: LlamaServer) -> None:
    """llama-cpp-python with one model ignores the requested name and answers with its own model.

    So chat requests cannot report kind "model" here; `check()` (above) and the fault-server tests cover that kind.
    """
    c = LLMClient(llama_server.base_url, "no-such-model", timeout=120)
    assert isinstance(c.complete(QUESTION, 4).text, str)
    raw = httpx.post(
        f"{llama_server.base_url}/chat/completions",
        json={"model": "no-such-model", "messages": QUESTION, "max_tokens": 1},
        timeout=120,
    )
    assert raw.status_code == 200 and raw.json()["model"] == "no-such-model"


def test_context_overflow_non_streamed(llama_server: LlamaServer) -> None:
    c = LLMClient(llama_server.base_url, llama_server.model, CANARY, timeout=120)
    with pytest.raises(LLMError) as info:
        c.complete([{"role": "user", "content": "word " * 5000}], 10)
    assert info.value.kind == "context"
    assert "ASSISTANT_CONTEXT_WINDOW" in str(info.value) and CANARY not in str(info.value)


def test_context_overflow_streamed(llama_server: LlamaServer) -> None:
    # llama-cpp-python answers 200 and then ends the event stream empty; the client says what that usually means.
    c = LLMClient(llama_server.base_url, llama_server.model, timeout=120)
    with pytest.raises(LLMError) as info:
        list(c.stream([{"role": "user", "content": "word " * 5000}], 10))
    assert info.value.kind == "stream_cut"
    assert "ASSISTANT_CONTEXT_WINDOW" in str(info.value)


def test_stopped_server_is_unreachable(throwaway_llama: LlamaServer, caplog: pytest.LogCaptureFixture) -> None:
    c = LLMClient(throwaway_llama.base_url, throwaway_llama.model, CANARY, timeout=30, max_retries=1)
    assert c.complete(QUESTION, 2) is not None
    throwaway_llama.stop()
    with pytest.raises(LLMError) as info:
        list(c.stream(QUESTION, 5))
    assert info.value.kind == "unreachable"
    assert str(info.value) == (
        f"LLM endpoint {throwaway_llama.base_url} is unreachable; is the server running? (ASSISTANT_LLM_BASE_URL)"
    )
    assert "retry 1/1" in caplog.text and CANARY not in caplog.text


def test_killed_mid_stream_is_stream_cut(throwaway_llama: LlamaServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="assistant.llm.client")
    c = LLMClient(throwaway_llama.base_url, throwaway_llama.model, CANARY, timeout=60, max_retries=3)
    got: list[str] = []
    killed = threading.Event()
    with pytest.raises(LLMError) as info:
        for delta in c.stream(LONG, 2000):
            got.append(delta)
            if len(got) == 3:
                # Killed like a crash: the open chunked response is left unterminated.
                throwaway_llama.kill()
                killed.set()
    assert killed.is_set(), f"the stream ended before the kill: {got!r}"
    assert info.value.kind == "stream_cut", str(info.value)
    assert len(got) >= 3 and "".join(got)
    assert "incomplete" in str(info.value) and CANARY not in str(info.value)
    assert "retry" not in caplog.text  # text had reached the caller, so no retry
