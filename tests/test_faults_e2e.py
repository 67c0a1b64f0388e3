"""LLM endpoint faults end to end: the assistant on the sample store, then `python -m assistant ask`.

For each fault the fault server can stage: one clear line names the cause, the evidence is still shown, a cut
stream keeps its partial text, and the same process (the same `Assistant`) answers the next question once the
endpoint is healthy again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from assistant import build_assistant
from assistant.answering.pipeline import Assistant
from assistant.config import Settings
from assistant.models import Answer
from tests import faultserver
from tests.conftest import ROOT, SHARED, free_port, make_settings
from tests.faultserver import FaultServer, Step, chunk, words_stream

MODEL = "fault-model"
TIMEOUT = 2  # seconds: the hang case waits this long, the others answer at once
RETRIES = 1
# A raw exception, not a message written for people: a traceback, a file frame or an exception class name.
RAW = re.compile(r"Traceback|File \"|\b[A-Z]\w*(Error|Exception|Timeout)\b")


def lookups() -> list[dict[str, Any]]:
    """The answerable one-turn lookup questions of the shared evaluation set."""
    rows = [json.loads(line) for line in (SHARED / "eval" / "questions.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in rows if r["type"] == "lookup" and not r["history"] and r["gold"]]


QUESTIONS = {r["qid"]: r for r in lookups()}
FIRST = QUESTIONS["p02"]  # What is DSPy?
SECOND = QUESTIONS["p06"]  # What is PyGlove?

PARTIAL = ["DSPy is a programming model", " that compiles declarative"]
HEALTHY = ["PyGlove", " is", " a", " library", " for", " symbolic", " programming", " in", " AutoML", " [1]", "."]


def err_body(message: str, **extra: object) -> dict[str, object]:
    """An OpenAI-style error body."""
    return {"error": {"message": message, **extra}}


def healthy() -> Step:
    return Step("stream", events=words_stream(HEALTHY))


@dataclass(frozen=True)
class Fault:
    """One staged fault: the server's script, what the error must say, and what must survive it."""

    name: str
    steps: Callable[[], list[Step]] = list  # the server's script; the closed port has none
    says: tuple[str, ...] = ()  # substrings of the error; empty means no error at all
    requests: int | None = None  # requests the server must see for the first question (retries included)
    partial: str = ""  # text that reached the caller before the fault


FAULTS = [
    Fault("unreachable", says=("is unreachable", "ASSISTANT_LLM_BASE_URL")),
    Fault("timeout", lambda: [Step("hang")], ("did not answer within 2 s", "ASSISTANT_LLM_TIMEOUT"), requests=1),
    Fault("401", lambda: [Step("json", 401, err_body("Incorrect API key provided"))], ("rejected the API key", "HTTP 401"), 1),
    Fault(
        "unknown-model-404",
        lambda: [Step("json", 404, err_body(f"The model `{MODEL}` does not exist", code="model_not_found"))],
        (f"model '{MODEL}' is not served", "ASSISTANT_LLM_MODEL"),
        1,
    ),
    Fault("500", lambda: [Step("json", 500, err_body("CUDA out of memory"))], ("HTTP 500", "CUDA out of memory"), 1 + RETRIES),
    Fault(
        "429-then-success",
        lambda: [Step("json", 429, err_body("slow down"), headers={"Retry-After": "0"}), healthy()],
        requests=2,
    ),
    Fault(
        "stream-cut",
        lambda: [Step("cut", events=[chunk(p) for p in PARTIAL])],
        ("dropped the connection", "incomplete"),
        1,
        "".join(PARTIAL),
    ),
    Fault("malformed-stream", lambda: [Step("stream", events=["{not json"])], ("not valid SSE JSON",), 1),
    Fault("not-a-chunk", lambda: [Step("stream", events=['{"unexpected": true}'])], ("not a completion chunk",), 1),
    Fault("closed-without-answer", lambda: [Step("close")], ("closed the connection without answering",), 1 + RETRIES),
    Fault("empty-stream", lambda: [Step("stream", events=[])], ("before sending any text", "ASSISTANT_CONTEXT_WINDOW"), 1),
    Fault(
        "error-event-mid-stream",
        lambda: [Step("stream", events=[chunk(PARTIAL[0]), json.dumps(err_body("generation failed"))])],
        ("reported an error: generation failed", "incomplete"),
        1,
        PARTIAL[0],
    ),
]


class Endpoint:
    """A fault server on one fixed loopback port, so that an assistant built once can meet fault after fault."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/v1"
        self.server: FaultServer | None = None

    def serve(self, *steps: Step) -> FaultServer:
        """Script the server for the next requests, starting it on the port if it is not running yet."""
        if self.server is None:
            with pytest.MonkeyPatch.context() as mp:
                bind = lambda _addr, handler: ThreadingHTTPServer(("127.0.0.1", self.port), handler)  # noqa: E731
                mp.setattr(faultserver, "ThreadingHTTPServer", bind)
                self.server = FaultServer(*steps).start()
        else:
            self.server.steps = list(steps)
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def llm_settings(sample_dir: Path, url: str) -> Settings:
    """The sample store with the LLM at `url`, short timeout and one retry so that faults end fast."""
    return make_settings(sample_dir, llm_base_url=url, llm_model=MODEL, llm_timeout=TIMEOUT, llm_max_retries=RETRIES)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    ep = Endpoint(free_port())
    ep.serve(healthy())
    yield ep
    ep.stop()


@pytest.fixture(scope="module")
def shared(endpoint: Endpoint, sample_dir: Path, embedder: Any) -> Assistant:
    """One assistant for every fault but the closed port: each fault must leave it able to answer the next question."""
    return build_assistant(llm_settings(sample_dir, endpoint.url), embedder=embedder)


def titles(answer: Answer) -> list[str]:
    return [e.title for e in answer.evidence]


def assert_one_clean_line(error: str, *says: str) -> None:
    """A message for people: one line, no traceback, naming the cause."""
    assert error and "\n" not in error, repr(error)
    assert not RAW.search(error), error
    for s in says:
        assert s in error, f"{s!r} not in {error!r}"


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault_is_one_clear_line_evidence_stays_and_next_question_works(
    fault: Fault, request: pytest.FixtureRequest, sample_dir: Path, embedder: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="assistant.llm.client")
    if fault.name == "unreachable":
        # A port nothing listens on; its own assistant, since the shared one's endpoint is up.
        ep = Endpoint(free_port())
        assistant = build_assistant(llm_settings(sample_dir, ep.url), embedder=embedder)
        before = 0
    else:
        ep = request.getfixturevalue("endpoint")
        assistant = request.getfixturevalue("shared")
        before = len(ep.serve(*fault.steps()).seen)
    try:
        answer = assistant.ask(FIRST["question"])

        # The question was answerable, so the LLM was asked (not a refusal) and the evidence is there regardless.
        assert not answer.refused and not answer.extractive
        assert FIRST["gold"][0] in titles(answer), titles(answer)
        if ep.server is not None and fault.requests is not None:
            assert len(ep.server.seen) - before == fault.requests
        if not fault.says:
            assert answer.error is None and not answer.incomplete
            assert answer.text.startswith("PyGlove is a library")
            retries = [
                r.getMessage() for r in caplog.records if r.name == "assistant.llm.client" and r.levelno == logging.WARNING
            ]
            assert retries == [f"LLM endpoint answered 429; retry 1/{RETRIES} in 0.0s"]
        else:
            assert answer.error is not None
            assert_one_clean_line(answer.error, *fault.says)
            assert answer.incomplete  # no answer or half of one: never presented as complete
            if fault.partial:
                assert answer.text.startswith(fault.partial), answer.text
            else:
                assert answer.text == "" and answer.citations == ()

        # The process keeps working: the same assistant answers the next question once the endpoint is healthy.
        srv = ep.serve(healthy())
        seen = len(srv.seen)
        second = assistant.ask(SECOND["question"])
        assert len(srv.seen) == seen + 1
        assert second.error is None and not second.incomplete and not second.refused, second.error
        assert second.text.startswith("PyGlove is a library") and [c.n for c in second.citations] == [1]
        assert SECOND["gold"][0] in titles(second)
    finally:
        if fault.name == "unreachable":
            ep.stop()


# -- the CLI ---------------------------------------------------------------------------------------------


CLI_FAULTS = {
    "500": (lambda: [Step("json", 500, err_body("CUDA out of memory"))], 2, ("HTTP 500", "CUDA out of memory")),
    "stream-cut": (lambda: [Step("cut", events=[chunk(p) for p in PARTIAL])], 3, ("dropped the connection",)),
    "timeout": (lambda: [Step("hang")], 2, ("did not answer within 2 s", "ASSISTANT_LLM_TIMEOUT")),
}


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str
    requests: int


@pytest.fixture(scope="module")
def cli_runs(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, CliRun]:
    """`python -m assistant ask` against each CLI fault, the processes run side by side (each pays for loading the models)."""
    cwd = tmp_path_factory.mktemp("cli-faults")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_") and k != "OPENAI_API_KEY"}
    # One torch thread each: three processes loading models side by side on a small machine contend less.
    env.update(
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT),
        ASSISTANT_CHROMA_PATH=str(sample_dir / "chroma"), ASSISTANT_INDEX_DIR=str(sample_dir / "index"),
        ASSISTANT_LLM_MODEL=MODEL, ASSISTANT_LLM_TIMEOUT=str(TIMEOUT), ASSISTANT_LLM_MAX_RETRIES=str(RETRIES),
    )  # fmt: skip
    servers = {name: FaultServer(*steps(), models=[MODEL]).start() for name, (steps, _, _) in CLI_FAULTS.items()}
    procs: dict[str, subprocess.Popen[str]] = {}
    runs: dict[str, CliRun] = {}
    try:
        for name, srv in servers.items():
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "assistant", "ask", FIRST["question"]], cwd=cwd, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, env={**env, "ASSISTANT_LLM_BASE_URL": srv.base_url},
            )  # fmt: skip
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=300)
            runs[name] = CliRun(proc.returncode, out, err, len(servers[name].seen))
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for srv in servers.values():
            srv.stop()
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CLI_FAULTS))
def test_cli_ask_reports_the_fault_in_one_line_and_still_prints_sources(name: str, cli_runs: dict[str, CliRun]) -> None:
    _, code, says = CLI_FAULTS[name]
    run = cli_runs[name]
    out, err = run.out, run.err
    # Exit 2 when the LLM gave no text at all; a cut answer still printed its text and exits 3 (`--help` lists the codes).
    assert run.code == code, f"exit {run.code}\n{out[-2000:]}\n{err[-2000:]}"
    assert run.requests, "the LLM was never asked"
    assert "Traceback" not in out + err and 'File "' not in out + err, err[-3000:]

    # The error: one `error:` line on stderr, naming the cause, with the incomplete marker; none on stdout.
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    assert not any(line.startswith("error: ") for line in out.splitlines()), out
    assert errors[0].endswith(" (answer incomplete)"), errors[0]
    assert_one_clean_line(errors[0].removeprefix("error: ").removesuffix(" (answer incomplete)"), *says)
    # On stderr the failure is logged once, as one line, and every other stderr line is a log record, not a dump.
    failed = [line for line in err.splitlines() if "LLM failed: " in line]
    assert len(failed) == 1 and all(s in failed[0] for s in says), err
    records = [line for line in err.splitlines() if line.strip() and not line.startswith("error: ")]
    assert all(re.match(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: ", line) for line in records), err

    # The evidence is still printed: the numbered sources with the paper the question is about.
    assert "\nSources:\n" in out, out
    text, sources = out.split("\nSources:\n", 1)
    assert re.search(rf"^[ *]\[\d+\] {re.escape(FIRST['gold'][0])}$", sources, re.M), sources
    assert text == ("".join(PARTIAL) if name == "stream-cut" else ""), text
