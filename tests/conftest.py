"""Shared fixtures: real embedder, on-disk and server Chroma stores, free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.runtime import prepare_runtime

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
OUTPUT = ROOT / "test-output"

pytest_plugins = ["tests.llm_fixtures"]

prepare_runtime(Settings(_env_file=None))  # type: ignore[call-arg]


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until something listens on the loopback port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def make_settings(tmp: Path, **overrides: object) -> Settings:
    """Settings isolated in a temporary folder, ignoring any .env and ASSISTANT_ variables."""
    base: dict[str, object] = {"chroma_path": tmp / "chroma", "index_dir": tmp / "index", "feedback_path": tmp / "feedback.jsonl"}
    base.update(overrides)
    clean = {k: v for k, v in os.environ.items() if k.startswith("ASSISTANT_") or k == "OPENAI_API_KEY"}
    for key in clean:
        os.environ.pop(key)
    try:
        return Settings(_env_file=None, **base)  # type: ignore[call-arg]
    finally:
        os.environ.update(clean)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    from assistant.index.embed import LocalEmbedder

    return LocalEmbedder()


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:  # type: ignore[no-untyped-def]
    """A folder holding the sample corpus ingested once for the whole session (read-only use)."""
    from ingest.loaders import load_path, sample_corpus_path
    from ingest.pipeline import ingest_report

    tmp = tmp_path_factory.mktemp("sample")
    s = make_settings(tmp)
    ingest_report(s, load_path(sample_corpus_path()), embedder=embedder)
    return tmp


@pytest.fixture
def sample_settings(sample_dir: Path) -> Settings:
    """Settings pointing at the session's ingested sample corpus."""
    return make_settings(sample_dir)


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    """A real `chroma run` on a free loopback port: (host, port, data folder)."""
    data = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
    log = open(data / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [chroma, "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=log
    )
    try:
        wait_for_port(port, 60, proc)
        yield "127.0.0.1", port, data
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """Where tests leave screenshots and logs for people to look at."""
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT
