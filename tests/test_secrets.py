"""A canary API key never reaches logs, error messages, exports, `--json` output, reprs or the app."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Settings
from assistant.errors import LLMError
from assistant.llm.client import LLMClient
from assistant.models import Answer
from tests.conftest import ROOT, free_port, make_settings

CANARY = "sk-canary-7f3a9"
CORE = "canary-7f3a9"  # the part a partial redaction ("sk-...") would still leak
QUESTION = "Which optimizer did program search discover?"
APP = ROOT / "ui" / "app.py"


def assert_clean(*texts: object) -> None:
    """None of the texts holds the canary or its distinctive core."""
    for text in texts:
        shown = text if isinstance(text, str) else repr(text)
        assert CORE not in shown, f"the API key leaked: ...{shown[max(0, shown.find(CORE) - 80) : shown.find(CORE) + 40]}..."


class EchoKeyServer:
    """An OpenAI-compatible endpoint that rejects every request and echoes the Authorization header back, as some
    real servers do ("Incorrect API key provided: sk-..."), so a key can only stay hidden if the client redacts it."""

    def __init__(self, status: int = 401) -> None:
        status_code = status

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self) -> None:
                key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                body = json.dumps({"error": {"message": f"Incorrect API key provided: {key}", "type": "invalid_request_error",
                                             "code": "invalid_api_key", "key": key}}).encode()  # fmt: skip
                self.send_response(status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = _reply
            do_POST = _reply

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> EchoKeyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture every logger at DEBUG, third-party ones included (openai, httpx, httpcore)."""
    quiet = {name: logging.getLogger(name).level for name in ("openai", "httpx", "httpcore", "assistant", "ui")}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.DEBUG)
    with caplog.at_level(logging.DEBUG):
        yield caplog
    for name, level in quiet.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def canary_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The canary as every key variable the settings read."""
    for key in list(os.environ):
        if key.startswith("ASSISTANT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ASSISTANT_LLM_API_KEY", CANARY)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    monkeypatch.setenv("ASSISTANT_EMBEDDING_API_KEY", CANARY)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Path:
    """Four sample papers (the Lion paper among them) in an on-disk store."""
    from ingest.loaders import LoadReport, load_path, sample_corpus_path
    from ingest.pipeline import ingest_report

    tmp = tmp_path_factory.mktemp("secrets")
    papers = load_path(sample_corpus_path()).papers
    lion = [p for p in papers if p.title.startswith("Symbolic Discovery")]
    ingest_report(make_settings(tmp), LoadReport(papers=lion + papers[:3]), embedder=embedder)
    return tmp


def exports(answer: Answer) -> list[str]:
    """Every rendering of an answer a user can see or save."""
    from assistant.cli import print_sources
    from assistant.output.render import to_bibtex, to_markdown
    from assistant.output.serialise import answer_json

    class Buffer(list[str]):
        def write(self, s: str) -> None:
            self.append(s)

    printed = Buffer()
    print_sources(answer, printed)  # type: ignore[arg-type]
    shown = [answer.text, answer.error or "", to_markdown(answer), to_bibtex(answer), json.dumps(answer_json(answer))]
    return [*shown, "".join(printed)]


# -- settings and reprs --------------------------------------------------------------------------------


def test_settings_never_show_the_key(canary_env: None) -> None:
    """repr, str, JSON dumps and the LLM client's descriptions hide the key the settings hold."""
    s = Settings(_env_file=None, llm_base_url="http://127.0.0.1:9/v1")  # type: ignore[call-arg]
    assert s.llm_api_key is not None and s.llm_api_key.get_secret_value() == CANARY  # the test is about a real key
    assert s.embedding_api_key is not None and s.embedding_api_key.get_secret_value() == CANARY
    client = LLMClient.from_settings(s)
    assert_clean(repr(s), str(s), f"{s!r}", s.model_dump_json(), json.dumps(s.model_dump(mode="json")), repr(s.model_dump()))
    assert_clean(repr(client), client.describe(), client.endpoint)


def test_openai_api_key_fallback_is_hidden_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """OPENAI_API_KEY alone (the fallback) is read and hidden the same way."""
    for key in list(os.environ):
        if key.startswith("ASSISTANT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.llm_api_key is not None and s.llm_api_key.get_secret_value() == CANARY
    assert_clean(repr(s), s.model_dump_json())


# -- error messages and logs ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 400, 500, 429])
def test_server_that_echoes_the_key_is_redacted(status: int, debug_logs: pytest.LogCaptureFixture) -> None:
    """Error bodies quoting the key (auth, bad request, retried 5xx and 429) reach neither the message nor any log."""
    with EchoKeyServer(status) as server:
        client = LLMClient(server.base_url, "m", CANARY, max_retries=1, sleep=lambda _s: None)
        for call in (
            lambda: list(client.stream([{"role": "user", "content": "hi"}], 8)),
            lambda: client.complete([{"role": "user", "content": "hi"}], 8),
            client.check,
        ):
            with pytest.raises(LLMError) as info:
                call()
            assert_clean(str(info.value), repr(info.value), info.value.args)
    if status in (429, 500):
        assert "retry 1/1" in debug_logs.text  # retried, and the retry was logged
    assert_clean(debug_logs.text, [r.getMessage() for r in debug_logs.records], [r.args for r in debug_logs.records])


def test_closed_port_error_and_logs_hide_the_key(debug_logs: pytest.LogCaptureFixture) -> None:
    """An unreachable endpoint: retries are logged and the error names the endpoint, never the key."""
    port = free_port()
    client = LLMClient(f"http://127.0.0.1:{port}/v1", "m", CANARY, max_retries=2, sleep=lambda _s: None)
    with pytest.raises(LLMError) as info:
        list(client.stream([{"role": "user", "content": "hi"}], 8))
    assert info.value.kind == "unreachable" and f"127.0.0.1:{port}" in str(info.value)
    assert "retry" in debug_logs.text
    assert_clean(str(info.value), debug_logs.text)


def url_key_failure() -> tuple[LLMClient, LLMError]:
    """A client with credentials in its base URL (user:key@host), and the error it raises at a closed port."""
    client = LLMClient(f"http://user:{CANARY}@127.0.0.1:{free_port()}/v1", "m", None, max_retries=0)
    with pytest.raises(LLMError) as info:
        client.complete([{"role": "user", "content": "hi"}], 8)
    return client, info.value


def test_key_in_the_base_url_is_not_in_messages() -> None:
    """Credentials written into ASSISTANT_LLM_BASE_URL stay out of the error, repr and status line."""
    client, error = url_key_failure()
    assert_clean(str(error), repr(client), client.describe(), client.endpoint)


def test_key_in_the_base_url_is_not_in_debug_logs(debug_logs: pytest.LogCaptureFixture) -> None:
    """Even DEBUG logs of the SDKs do not show URL credentials."""
    from assistant.runtime import prepare_runtime

    prepare_runtime(Settings(_env_file=None, log_level="DEBUG"))  # type: ignore[call-arg]
    try:
        url_key_failure()
        assert_clean(debug_logs.text)
    finally:
        prepare_runtime(Settings(_env_file=None))  # type: ignore[call-arg]


@pytest.mark.slow
def test_answer_with_failing_llm_exports_no_key(small_store: Path, embedder: Any, debug_logs: pytest.LogCaptureFixture) -> None:
    """An answer whose LLM rejected the key: error, Markdown, BibTeX, JSON and the printed sources are clean."""
    from assistant import build_assistant

    with EchoKeyServer(401) as server:
        s = make_settings(small_store, llm_base_url=server.base_url, llm_model="m", llm_api_key=CANARY, llm_max_retries=0)
        assistant = build_assistant(s, embedder=embedder)
        answer = assistant.ask(QUESTION)
    assert answer.error and "rejected the API key" in answer.error
    assert_clean(*exports(answer), assistant.describe_llm(), repr(assistant.llm), debug_logs.text)


@pytest.mark.slow
def test_endpoint_that_writes_the_key_into_its_answer_is_redacted(small_store: Path, embedder: Any) -> None:
    """An endpoint that echoes the Authorization header into its streamed answer, split across chunks of every size:
    the answer, every export, `--json` and the printed sources hold "[redacted]" where the key was."""
    from assistant import build_assistant
    from tests.faultserver import FaultServer, Seen, Step, text_events

    def respond(seen: Seen) -> list[str]:
        header = seen.headers.get("Authorization", "")
        size = 1 + len(echoes) % 7
        echoes.append(header)
        return text_events(f"Your header was {header}; the key's core is {header[10:]}. Lion is an optimizer [1].", size)

    echoes: list[str] = []
    with FaultServer(Step("stream", respond=respond), models=["m"]) as server:
        s = make_settings(small_store, llm_base_url=server.base_url, llm_model="m", llm_api_key=CANARY, llm_max_retries=0)
        assistant = build_assistant(s, embedder=embedder)
        answers = [assistant.ask(QUESTION) for _ in range(3)]
    assert echoes and all(CANARY in e for e in echoes)  # the server had the key, and wrote it into each answer
    for answer in answers:
        assert answer.error is None and "Your header was Bearer [redacted]" in answer.text
        assert_clean(*exports(answer))


@pytest.mark.llm
@pytest.mark.slow
def test_real_llm_answer_with_key_exports_no_key(
    small_store: Path, embedder: Any, llama_server: Any, debug_logs: pytest.LogCaptureFixture
) -> None:
    """The fault-free llama.cpp server, sent the canary key: the answer and every export and log are clean."""
    from assistant import build_assistant

    s = make_settings(
        small_store, llm_base_url=llama_server.base_url, llm_model=llama_server.model, llm_api_key=CANARY, llm_timeout=300,
        max_answer_tokens=48, context_window=2048,
    )  # fmt: skip
    assistant = build_assistant(s, embedder=embedder)
    answer = assistant.ask(QUESTION, top_k=2)
    assert answer.error is None and answer.text and not answer.extractive
    assert_clean(*exports(answer), assistant.describe_llm(), debug_logs.text)


# -- the CLI -------------------------------------------------------------------------------------------


def cli(args: list[str], store: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m assistant ARGS` with the canary in its environment and DEBUG logging."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_") and k != "OPENAI_API_KEY"}
    base.update(
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(ROOT), ASSISTANT_LLM_API_KEY=CANARY, OPENAI_API_KEY=CANARY,
        ASSISTANT_LOG_LEVEL="DEBUG", ASSISTANT_CHROMA_PATH=str(store / "chroma"), ASSISTANT_INDEX_DIR=str(store / "index"),
        ASSISTANT_LLM_MAX_RETRIES="1", **env,
    )  # fmt: skip
    command = [sys.executable, "-m", "assistant", *args]
    return subprocess.run(command, cwd=cwd, env=base, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_cli_json_and_logs_hide_the_key(small_store: Path, tmp_path: Path) -> None:
    """`ask --json` against a server that echoes the key, with DEBUG logs on: stdout and stderr are clean."""
    with EchoKeyServer(401) as server:
        url = server.base_url
        done = cli(["ask", QUESTION, "--json"], small_store, tmp_path, ASSISTANT_LLM_BASE_URL=url, ASSISTANT_LLM_MODEL="m")
    assert done.returncode == 2, done.stderr[-2000:]
    payload = json.loads(done.stdout)
    assert "rejected the API key" in payload["error"]
    assert "LLM failed" in done.stderr  # the failure was logged, so the log's silence about the key means something
    assert_clean(done.stdout, done.stderr)


@pytest.mark.slow
def test_cli_markdown_with_closed_port_hides_the_key(small_store: Path, tmp_path: Path) -> None:
    """`ask --format markdown` with the LLM at a closed port: the error line and the export are clean."""
    port = free_port()
    done = cli(
        ["ask", QUESTION, "--format", "markdown"], small_store, tmp_path, ASSISTANT_LLM_BASE_URL=f"http://127.0.0.1:{port}/v1"
    )
    assert f"127.0.0.1:{port}" in done.stdout + done.stderr
    assert_clean(done.stdout, done.stderr)


# -- the app -------------------------------------------------------------------------------------------


def app_texts(at: Any) -> list[str]:
    """Every element the app rendered, as its protobuf text (values, labels, help and placeholders included)."""
    out = []
    # Streamlit offers no public walk over the whole tree (main, sidebar and the bottom container of chat_input).
    for node in at._tree:  # noqa: SLF001
        proto = getattr(node, "proto", None)
        out.append(str(proto) if proto is not None else "")
        value = getattr(node, "value", None)
        out.append(repr(value) if value is not None else "")
    return out


@pytest.mark.slow
@pytest.mark.skipif(not APP.exists(), reason="ui/app.py is not written yet")
@pytest.mark.parametrize("endpoint", ["closed", "echo"])
def test_app_never_renders_the_key(
    endpoint: str, small_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, canary_env: None
) -> None:
    """The Streamlit app with the canary set: after a question whose LLM fails, no element shows the key."""
    from streamlit.testing.v1 import AppTest

    def clear() -> None:
        import streamlit as st

        from ui import resources

        for name in ("get_settings", "get_assistant", "_corpus"):
            cached = getattr(resources, name, None)
            if cached is not None and hasattr(cached, "clear"):
                cached.clear()
        st.cache_data.clear()

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASSISTANT_CHROMA_PATH", str(small_store / "chroma"))
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(small_store / "index"))
    monkeypatch.setenv("ASSISTANT_FEEDBACK_PATH", str(tmp_path / "feedback.jsonl"))
    monkeypatch.setenv("ASSISTANT_LLM_MODEL", "m")
    monkeypatch.setenv("ASSISTANT_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("ASSISTANT_LLM_TIMEOUT", "10")
    clear()
    try:
        with EchoKeyServer(401) as server:
            url = server.base_url if endpoint == "echo" else f"http://127.0.0.1:{free_port()}/v1"
            monkeypatch.setenv("ASSISTANT_LLM_BASE_URL", url)
            at = AppTest.from_file(str(APP), default_timeout=300).run()
            assert not at.exception
            at.chat_input[0].set_value(QUESTION).run()
            assert not at.exception
            texts = app_texts(at)
            assert any("127.0.0.1" in t for t in texts), "the LLM failure is shown, so its message was checked"
            assert_clean(*texts)
            for page in sorted((APP.parent / "pages").glob("*.py")):  # every other page renders clean too
                at.switch_page(f"pages/{page.name}").run()
                assert not at.exception
                assert_clean(*app_texts(at))
    finally:
        clear()
