"""Two answers streamed at once from one shared assistant each carry their own token usage, never the other's.

The fault server, not llama.cpp: llama-cpp-python's server interrupts a running stream when a second request
arrives (its interrupt_requests default), so it cannot hold two answers open at once.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from assistant import build_assistant
from assistant.answering.pipeline import Assistant
from assistant.models import Answer
from tests.conftest import make_settings
from tests.faultserver import FaultServer, Step, words_stream

SHORT = "What is DSPy?"
# Adam, not AdamW: no abstract of the sample names AdamW, so that question is a near miss and is refused before the LLM.
LONG = "How does the Lion optimizer, found by a symbolic search over programs, compare with Adam when the batch size is large?"


def stream_both(assistant: Assistant, questions: tuple[str, ...]) -> dict[str, tuple[list[str], Answer]]:
    """Stream each question on its own thread, all at once, from the one assistant; deltas and result per question."""
    results: dict[str, tuple[list[str], Answer]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(questions))

    def run(question: str) -> None:
        try:
            start.wait(timeout=60)
            stream = assistant.stream(question, mode="ask")
            deltas = list(stream)
            results[question] = (deltas, stream.result)
        except BaseException as exc:  # reported by the main thread, with its traceback
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(q,)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    if errors:
        raise errors[0]
    assert set(results) == set(questions)
    return results


def asked(body: dict[str, Any]) -> str:
    """The question a chat request asks (the prompt ends with it)."""
    return str(body["messages"][-1]["content"]).rsplit("Question: ", 1)[-1]


def test_concurrent_streams_report_their_own_server_usage(sample_dir: Path, embedder: Any) -> None:
    """The server reports usage of its own per request, and holds both requests open until both have arrived."""
    both_open = threading.Barrier(2)

    def reply(body: dict[str, Any]) -> list[str]:
        both_open.wait(timeout=60)  # an assistant that serialised its answers would never get here twice
        prompt = sum(len(m["content"]) for m in body["messages"])
        question = asked(body)
        return words_stream(["See", " [1]", "."], usage={"prompt_tokens": prompt, "completion_tokens": len(question)})

    with FaultServer(Step("stream", reply=reply)) as srv:
        settings = make_settings(sample_dir, llm_base_url=srv.base_url, llm_model="fault-model", llm_max_retries=0)
        assistant = build_assistant(settings, embedder=embedder)
        results = stream_both(assistant, (SHORT, LONG))
    sent = {asked(s.body): sum(len(m["content"]) for m in s.body["messages"]) for s in srv.seen if s.method == "POST"}
    assert set(sent) == {SHORT, LONG}
    for question, (deltas, answer) in results.items():
        assert "".join(deltas) == "See [1]." and answer.error is None, answer.error
        assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (sent[question], len(question))
    assert results[SHORT][1].usage != results[LONG][1].usage
