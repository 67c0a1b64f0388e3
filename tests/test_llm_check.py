"""build_assistant(check_llm=True): a wrong model name or an unreachable endpoint is an error before any question."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant import CHECK_TIMEOUT, build_assistant
from assistant.errors import LLMError
from tests.conftest import free_port, make_settings
from tests.faultserver import FaultServer, Step

MODELS = {"object": "list", "data": [{"id": "served-model", "object": "model", "owned_by": "test"}]}


def test_an_unknown_model_is_named_with_what_the_server_serves(sample_dir: Path, embedder: Any) -> None:
    with FaultServer(Step("json", body=MODELS)) as server:
        settings = make_settings(sample_dir, llm_base_url=server.base_url, llm_model="missing-model")
        with pytest.raises(LLMError) as caught:
            build_assistant(settings, embedder=embedder, check_llm=True)
        assert [(r.method, r.path) for r in server.seen] == [("GET", "/v1/models")], "one cheap request"
    assert caught.value.kind == "model"
    message = str(caught.value)
    assert "missing-model" in message and "served-model" in message and "ASSISTANT_LLM_MODEL" in message


def test_a_served_model_passes_and_nothing_else_is_asked(sample_dir: Path, embedder: Any) -> None:
    with FaultServer(Step("json", body=MODELS)) as server:
        settings = make_settings(sample_dir, llm_base_url=server.base_url, llm_model="served-model")
        assistant = build_assistant(settings, embedder=embedder, check_llm=True)
        assert assistant.llm is not None and len(server.seen) == 1


def test_an_unreachable_endpoint_fails_fast(sample_dir: Path, embedder: Any) -> None:
    settings = make_settings(sample_dir, llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_model="m")
    with pytest.raises(LLMError) as caught:
        build_assistant(settings, embedder=embedder, check_llm=True)
    assert caught.value.kind == "unreachable" and "ASSISTANT_LLM_BASE_URL" in str(caught.value)


def test_a_silent_endpoint_is_given_up_on_after_the_short_timeout(sample_dir: Path, embedder: Any) -> None:
    """The check waits CHECK_TIMEOUT, not the answer timeout of a minute, and does not retry."""
    with FaultServer(Step("hang")) as server:
        settings = make_settings(sample_dir, llm_base_url=server.base_url, llm_model="m", llm_timeout=60, llm_max_retries=3)
        with pytest.raises(LLMError) as caught:
            build_assistant(settings, embedder=embedder, check_llm=True)
        assert len(server.seen) == 1, "no retry"
    assert caught.value.kind == "timeout" and f"within {CHECK_TIMEOUT:g} s" in str(caught.value), str(caught.value)


def test_without_the_check_nothing_is_sent_at_build(sample_dir: Path, embedder: Any) -> None:
    with FaultServer(Step("json", body=MODELS)) as server:
        build_assistant(make_settings(sample_dir, llm_base_url=server.base_url, llm_model="missing"), embedder=embedder)
        assert server.seen == []


def test_the_cli_reports_an_unknown_model_before_the_question(sample_dir: Path) -> None:
    """`ask` with a wrong model name: one warning line on stderr from the check, then the answer's own error."""
    import io

    from assistant.cli import main

    with FaultServer(Step("json", 404, {"error": {"message": "model not found"}}), models=["served-model"]) as server:
        settings = make_settings(sample_dir, llm_base_url=server.base_url, llm_model="missing-model", llm_max_retries=0)
        out, err = io.StringIO(), io.StringIO()
        main(["ask", "What is DSPy?"], settings=settings, out=out, err=err)
    first = err.getvalue().splitlines()[0]
    assert first.startswith("warning: the LLM endpoint check failed") and "missing-model" in first, err.getvalue()
    assert "served-model" in first
