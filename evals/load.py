"""Benchmark parts that time retrieval and start-up: latency, the concurrent load run, CLI and app cold starts."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from assistant.models import Paper
from assistant.text.sentences import sentence_spans

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    at = (len(ordered) - 1) * q / 100
    lo = int(at)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (at - lo)


def cycle_to(items: Sequence[str], n: int) -> list[str]:
    """The items repeated in order until there are n of them."""
    if not items:
        raise ValueError("no queries to run")
    return [items[i % len(items)] for i in range(n)]


def corpus_queries(papers: Sequence[Paper]) -> list[str]:
    """Queries drawn from a corpus with no query set: each title, first and last abstract sentence."""
    out: list[str] = []
    for p in papers:
        spans = sentence_spans(p.abstract)
        out.append(p.title)
        if spans:
            out.append(p.abstract[spans[0][0] : spans[0][1]])
        if len(spans) > 1:
            out.append(p.abstract[spans[-1][0] : spans[-1][1]])
    return out


def paired_latency(runs: dict[str, Callable[[str], Any]], queries: Sequence[str], warmup: int = 3) -> dict[str, dict[str, float]]:
    """Latency of several systems on the same queries, interleaved per query so load from other processes hits all alike."""
    for q in queries[:warmup]:
        for run in runs.values():
            run(q)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i, q in enumerate(queries):
        order = list(runs.items())
        for name, run in order if i % 2 == 0 else order[::-1]:
            started = time.perf_counter()
            run(q)
            times[name].append(1000 * (time.perf_counter() - started))
    return {
        name: {
            "queries": len(t),
            "p50_ms": round(percentile(t, 50), 1),
            "p95_ms": round(percentile(t, 95), 1),
            "mean_ms": round(statistics.fmean(t), 1),
        }
        for name, t in times.items()
    }


def rss_mb() -> float:
    """Resident memory of this process in MiB."""
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident memory in MiB of this process, or of its largest waited-for child."""
    import resource

    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024  # kilobytes on Linux


def load_run(run: Callable[[str], Any], queries: Sequence[str], threads: int = 8) -> dict[str, Any]:
    """Queries from `threads` threads at once, in two halves; counts errors and RSS growth between the halves."""
    half = len(queries) // 2
    errors: list[str] = []
    times: list[float] = []

    def one(q: str) -> None:
        started = time.perf_counter()
        try:
            run(q)
        except Exception as exc:  # a load run counts failures rather than stopping at the first
            errors.append(f"{type(exc).__name__}: {exc}")
        times.append(1000 * (time.perf_counter() - started))

    rss_start = rss_mb()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, queries[:half]))
        rss_half = rss_mb()
        list(pool.map(one, queries[half:]))
    seconds = time.perf_counter() - started
    rss_end = rss_mb()
    return {
        "queries": len(queries),
        "threads": threads,
        "errors": len(errors),
        "first_errors": errors[:3],
        "seconds": round(seconds, 2),
        "queries_per_second": round(len(queries) / seconds, 1),
        "p50_ms": round(percentile(times, 50), 1),
        "p95_ms": round(percentile(times, 95), 1),
        "rss_start_mb": round(rss_start, 1),
        "rss_half_mb": round(rss_half, 1),
        "rss_end_mb": round(rss_end, 1),
        "rss_growth_second_half": round((rss_end - rss_half) / rss_half, 4),
    }


def store_env(chroma_path: Path, index_dir: Path, collection: str) -> dict[str, str]:
    """Environment for a child process that uses the given store, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(
        ASSISTANT_CHROMA_PATH=str(chroma_path),
        ASSISTANT_INDEX_DIR=str(index_dir),
        ASSISTANT_COLLECTION=collection,
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
    )
    return env


def _seconds_to_exit(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, timeout=300)
    return time.perf_counter() - started, proc


def cli_cold_start(env: dict[str, str], question: str, runs: int = 2) -> dict[str, Any]:
    """Seconds from `python -m assistant ask ...` starting to it exiting with the answer printed, and the same for
    `python -c "import torch"`, alternated run by run so that both see the same machine load; the ratio of the
    medians is the figure that travels between machines."""
    ask = [sys.executable, "-m", "assistant", "ask", question, "--json"]
    torch_only = [sys.executable, "-c", "import torch"]
    seconds: list[float] = []
    torch_seconds: list[float] = []
    for _ in range(runs):
        took, proc = _seconds_to_exit(ask, env)
        if proc.returncode != 0:
            return {"ok": False, "error": proc.stderr.decode(errors="replace")[-300:]}
        seconds.append(took)
        took, proc = _seconds_to_exit(torch_only, env)
        if proc.returncode == 0:
            torch_seconds.append(took)
    out: dict[str, Any] = {"ok": True, "runs": runs, "seconds": [round(s, 2) for s in seconds], "best_s": round(min(seconds), 2)}
    out["embedder"] = embedder_backend(env)
    if torch_seconds:
        out["import_torch_s"] = [round(s, 2) for s in torch_seconds]
        out["ratio_to_import_torch"] = round(statistics.median(seconds) / statistics.median(torch_seconds), 2)
    return out


def embedder_backend(env: dict[str, str]) -> str:
    """Which runtime the CLI's embedder uses under this environment: "onnx" (the install-time export) or "torch"."""
    code = "from assistant.index.embed import LocalEmbedder; print(LocalEmbedder().backend)"
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, timeout=300)
    return proc.stdout.decode().strip() or f"unknown: {proc.stderr.decode(errors='replace')[-200:]}"


CHROMIUM = Path("/usr/bin/chromium")


def browser_first_answer(url: str, question: str, started: float, timeout: float) -> dict[str, Any]:
    """In headless chromium, seconds (from `started`) until the chat input shows and until a first answer completes.

    The health check answers before the app script has run once; only a browser session runs it.
    """
    if not CHROMIUM.is_file():
        return {"browser": f"skipped: {CHROMIUM} not found"}
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"browser": "skipped: playwright is not installed"}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
            try:
                page = browser.new_page()
                page.set_default_timeout(timeout * 1000)
                page.goto(url)
                box = page.get_by_test_id("stChatInputTextArea")
                box.wait_for(state="visible")
                ready = time.perf_counter() - started
                box.fill(question)
                box.press("Enter")
                page.wait_for_function("document.querySelectorAll('[data-testid=stFeedback]').length >= 1")
                answered = time.perf_counter() - started
            finally:
                browser.close()
    except Exception as exc:  # a browser failure is a figure to report, never a reason to lose the bench's others
        return {"browser": f"failed: {type(exc).__name__}: {str(exc)[:200]}"}
    return {"chat_input_s": round(ready, 2), "first_answer_s": round(answered, 2)}


def _streamlit_command(app: Path, port: int) -> list[str]:
    """The app started headless on a loopback port, with no usage stats and no file watcher."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]


def app_cold_start(env: dict[str, str], question: str | None = None, timeout: float = 180.0) -> dict[str, Any]:
    """Seconds from `streamlit run ui/app.py` starting until /_stcore/health answers, until a first page fetch,
    and (with a question, in headless chromium) until the chat input shows and a first answer completes."""
    import httpx

    app = ROOT / "ui" / "app.py"
    if not app.is_file():
        return {"ok": False, "error": "ui/app.py not found"}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    cmd = _streamlit_command(app, port)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        health = None
        while time.perf_counter() - started < timeout:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace")[-300:] if proc.stderr else ""
                return {"ok": False, "error": f"streamlit exited with {proc.returncode}: {err}"}
            try:
                if httpx.get(f"{base}/_stcore/health", timeout=2).status_code == 200:
                    health = time.perf_counter() - started
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        if health is None:
            return {"ok": False, "error": f"no health answer within {timeout:.0f}s"}
        page = httpx.get(base + "/", timeout=30)
        first_page = time.perf_counter() - started
        ok = page.status_code == 200
        out: dict[str, Any] = {"ok": ok, "health_s": round(health, 2), "first_page_s": round(first_page, 2)}
        if ok and question:
            out.update(browser_first_answer(base, question, started, timeout))
        return out
    except Exception as exc:  # an app that fails to start is a figure to report, never a reason to lose the others
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
