"""Ingests killed at random points recover: the re-run leaves every paper complete, exactly once.

`python -m ingest FILE --json` runs on SciFact papers and is SIGKILLed at seeded random points (one
early, while it loads, the others after a random number of chunks has reached the store, plus a
random delay), at least five times into an embedded store and five times into a `chroma run` server;
the embedded run also gets one SIGINT. A final run must then leave exactly the papers and chunks a
clean ingest would. The two stores are driven side by side to keep the wall time down.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Settings
from assistant.index.lexical import LexicalIndex, index_is_fresh
from assistant.index.paths import lexical_folder
from assistant.index.store import open_store
from ingest.loaders import load_path
from tests.conftest import SHARED, make_settings
from tests.test_ingest_store import CountingEmbedder, assert_store_matches, cli_env, expected_chunks, ingest, snapshot

SCIFACT = SHARED / "data" / "scifact" / "corpus.jsonl"
PAPERS = 200
KILLS = 5
BATCH = "16"  # ASSISTANT_INGEST_WINDOW and _EMBEDDING_BATCH_SIZE: a write every 16 chunks, much to interrupt
SEED = 20240611
RUN_TIMEOUT = 300.0

pytestmark = [pytest.mark.slow, pytest.mark.server]


@dataclass
class Sequence:
    """What happened to one store."""

    kills: list[dict[str, Any]] = field(default_factory=list)
    sigint: subprocess.CompletedProcess[str] | None = None
    final: dict[str, Any] = field(default_factory=dict)
    final_stderr: str = ""
    error: BaseException | None = None
    runs: list[tuple[str, float]] = field(default_factory=list)  # (how it ended, wall seconds), for failure messages


def embedded_progress(chroma_path: Path) -> Callable[[bool], int | None]:
    """Chunks the embedded store holds (None: unreadable right now).

    While an ingest runs the file is read with `immutable=1`, taking no lock, so the writer is never
    blocked; between runs it is opened normally, which rolls back a journal a killed writer left.
    """
    db = chroma_path / "chroma.sqlite3"

    def count(running: bool) -> int | None:
        if not db.exists():
            return 0
        uri = f"file:{db}?mode=ro&immutable=1" if running else f"file:{db}"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=5)
            try:
                return int(conn.execute("SELECT count(*) FROM embeddings").fetchone()[0])
            finally:
                conn.close()
        except sqlite3.Error:
            return None

    return count


def server_progress(host: str, port: int, collection: str) -> Callable[[bool], int | None]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.HttpClient(host=host, port=port, settings=ChromaSettings(anonymized_telemetry=False))

    def count(running: bool) -> int | None:
        del running  # the server serialises reads and writes itself
        try:
            return int(client.get_collection(collection).count())
        except Exception as exc:
            return 0 if "does not exist" in str(exc) or "NotFound" in type(exc).__name__ else None

    return count


@dataclass(frozen=True)
class Launch:
    """How to start one ingest: its command line, environment and folder."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path


def drive(
    launch: Launch,
    progress: Callable[[bool], int | None],
    total: int,
    rng: random.Random,
    sigint: bool,
) -> Sequence:
    """Kill ingests of the input until KILLS kills landed, optionally SIGINT one, then finish it."""
    seq = Sequence()
    argv, env, cwd = launch.argv, launch.env, launch.cwd

    def start() -> subprocess.Popen[str]:
        # A suite started in the background by a non-interactive shell inherits SIGINT ignored, and so would the
        # ingest: give it the default disposition, so Python turns SIGINT into KeyboardInterrupt as for a user.
        def default_sigint() -> None:
            signal.signal(signal.SIGINT, signal.SIG_DFL)

        return subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint
        )

    def wait_for(proc: subprocess.Popen[str], target: int) -> int | None:
        deadline = time.monotonic() + RUN_TIMEOUT
        seen: int | None = None
        while proc.poll() is None and time.monotonic() < deadline:
            got = progress(True)
            seen = got if got is not None else seen
            if seen is not None and seen >= target:
                return seen
            time.sleep(0.05)
        return seen

    attempts = 0
    while len(seq.kills) < KILLS and attempts < KILLS + 4:
        attempts += 1
        before = progress(False) or 0
        early = not seq.kills  # the first kill lands while the process starts, loads the model or opens the store
        target = before + rng.randint(1, max(1, min(16, (total - before) // 4)))
        delay = rng.uniform(0.5, 6.0) if early else rng.uniform(0.0, 0.8)
        started = time.monotonic()
        proc = start()
        if not early:
            wait_for(proc, target)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
            seq.runs.append(("SIGKILL", round(time.monotonic() - started, 1)))
            after = progress(False)
            seq.kills.append({"before": before, "target": None if early else target, "delay": round(delay, 2), "after": after})
        else:
            out, err = proc.communicate()
            seq.runs.append((f"exit {proc.returncode}", round(time.monotonic() - started, 1)))
            assert proc.returncode == 0, err  # it finished before the kill: only a clean exit is acceptable
    if sigint:
        base = progress(False) or 0
        started = time.monotonic()
        proc = start()
        wait_for(proc, base + 1)
        time.sleep(rng.uniform(0.0, 0.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        seq.sigint = subprocess.CompletedProcess(argv, proc.returncode, out, err)
        seq.runs.append(("SIGINT", round(time.monotonic() - started, 1)))
    started = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    seq.runs.append(("final", round(time.monotonic() - started, 1)))
    assert done.returncode == 0, done.stderr
    seq.final = json.loads(done.stdout)
    seq.final_stderr = done.stderr
    return seq


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SCIFACT.is_file():
        pytest.skip(f"{SCIFACT} is not available")
    path = tmp_path_factory.mktemp("kill-input") / "scifact-head.jsonl"
    with SCIFACT.open(encoding="utf-8") as src:
        path.write_text("".join(next(src) for _ in range(PAPERS)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def killed(  # type: ignore[no-untyped-def]
    corpus: Path, tmp_path_factory: pytest.TempPathFactory, chroma_server
) -> Iterator[dict[str, tuple[Settings, Sequence]]]:
    """Both kill sequences, run side by side: store kind -> (settings, what happened)."""
    host, port, _ = chroma_server
    papers = load_path(corpus).papers
    assert len(papers) == PAPERS

    emb_tmp = tmp_path_factory.mktemp("kill-embedded")
    emb_settings = make_settings(emb_tmp)
    srv_tmp = tmp_path_factory.mktemp("kill-server")
    collection = f"kill_{uuid.uuid4().hex[:8]}"
    srv_settings = make_settings(srv_tmp, chroma_host=host, chroma_port=port, collection=collection)
    total = sum(len(c) for c in expected_chunks(papers, emb_settings).values())

    argv = [sys.executable, "-m", "ingest", str(corpus), "--json"]
    plans = {
        "embedded": (emb_settings, emb_tmp, {}, embedded_progress(emb_settings.chroma_path), True),
        "server": (
            srv_settings,
            srv_tmp,
            {"ASSISTANT_CHROMA_HOST": host, "ASSISTANT_CHROMA_PORT": str(port), "ASSISTANT_COLLECTION": collection},
            server_progress(host, port, collection),
            False,
        ),
    }
    results: dict[str, tuple[Settings, Sequence]] = {}

    def worker(kind: str, seed: int) -> None:
        s, tmp, extra, progress, sigint = plans[kind]
        env = cli_env(tmp, ASSISTANT_EMBEDDING_BATCH_SIZE=BATCH, ASSISTANT_INGEST_WINDOW=BATCH, **extra)
        try:
            seq = drive(Launch(argv, env, tmp), progress, total, random.Random(seed), sigint)
        except BaseException as exc:  # reported by the tests, not lost in the thread
            seq = Sequence(error=exc)
        results[kind] = (s, seq)

    threads = [threading.Thread(target=worker, args=(kind, SEED + n)) for n, kind in enumerate(plans)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    yield results


def check_recovered(s: Settings, seq: Sequence, corpus: Path, embedder: Any) -> None:
    if seq.error is not None:
        raise seq.error
    papers = load_path(corpus).papers
    print(f"kills: {seq.kills}\nruns: {seq.runs}")
    assert len(seq.kills) >= KILLS, seq.kills
    assert any(k["after"] for k in seq.kills), "no kill landed after chunks were written"
    final = seq.final
    assert final["added"] + final["updated"] + final["unchanged"] == PAPERS
    assert final["removed"] == 0
    assert final["unchanged"] > 0, "earlier, killed runs stored no complete paper"
    assert final["added"] + final["updated"] > 0, "nothing was left for the final run: the kills came too late"
    assert seq.final_stderr.strip() == ""

    store = open_store(s, "all-MiniLM-L6-v2", 384, create=False)
    try:
        # exact papers and chunks, no duplicates, every paper complete with one hash
        assert_store_matches(store, papers, s)
        assert len(store.papers()) == PAPERS
        states = store.paper_states()
        assert set(states) == {p.id for p in papers}
        assert all(state.complete for state in states.values())
        ids = [cid for cid, _, _ in store.iter_chunks()]
        assert len(ids) == len(set(ids))
        # the vectors survived: each of a few chunks is its own nearest neighbour
        stored = snapshot(store)
        for chunk_id in random.Random(SEED).sample(sorted(stored), 4):
            hit = store.query(embedder.embed_query(stored[chunk_id][4]), 1)[0]
            assert hit.chunk_id == chunk_id
            assert hit.score > 0.99
        # the BM25 index matches the store
        assert index_is_fresh(store, lexical_folder(s))
        index = LexicalIndex.load(lexical_folder(s))
        assert index is not None and sorted(index.ids) == sorted(stored)
        # and one more ingest changes nothing, without embedding anything
        counting = CountingEmbedder(embedder)
        again = ingest(s, papers, counting, store)
        assert (again.unchanged, again.chunks, counting.calls) == (PAPERS, 0, 0)
    finally:
        store.close()


def test_killed_ingests_recover_in_the_embedded_store(killed, corpus: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    s, seq = killed["embedded"]
    check_recovered(s, seq, corpus, embedder)


def test_killed_ingests_recover_in_the_server_store(killed, corpus: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    s, seq = killed["server"]
    check_recovered(s, seq, corpus, embedder)


def test_ctrl_c_stops_with_one_line_and_the_rerun_completes(killed, corpus: Path) -> None:  # type: ignore[no-untyped-def]
    _, seq = killed["embedded"]
    if seq.error is not None:
        raise seq.error
    assert seq.sigint is not None
    assert seq.sigint.returncode != 0
    assert seq.sigint.returncode == 130
    lines = seq.sigint.stderr.strip().splitlines()
    assert len(lines) == 1, seq.sigint.stderr
    assert lines[0].startswith("error: interrupted")
    assert seq.sigint.stdout == ""
    # the final run after the interrupt completed the store (checked in full by the embedded test)
    assert seq.final["added"] + seq.final["updated"] + seq.final["unchanged"] == PAPERS


def test_kill_points_are_spread(killed) -> None:  # type: ignore[no-untyped-def]
    """The kills landed at different points: before anything was written and part-way through."""
    for kind in ("embedded", "server"):
        _, seq = killed[kind]
        if seq.error is not None:
            raise seq.error
        afters = [k["after"] or 0 for k in seq.kills]
        assert len(set(afters)) >= 3, (kind, seq.kills)
        assert afters == sorted(afters), (kind, seq.kills)  # progress is kept across kills
