"""Two processes on one Chroma server: this one ingests 200 papers while tests/lexical_asker.py asks BM25 questions.

The asker's BM25 index follows the collection's changelog: the new papers reach its results, it fetches only the
changed chunks (never the whole collection again), and no question waits for an update (the issue asks for every
question under 1 s while the update runs; this is the one test that times anything).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from ingest.loaders import LoadReport, load_text
from tests.conftest import ROOT, SHARED, make_settings

SCIFACT = SHARED / "data" / "scifact"
PRELOADED, INGESTED = 150, 200


def short_papers(start: int, n: int) -> LoadReport:
    """SciFact papers with abstracts cut to about 400 characters, so each is one chunk and embeds fast."""
    lines = []
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in itertools.islice(f, start, start + n):
            record = json.loads(line)
            cut = record["text"].find(". ", 300)
            record["text"] = record["text"] if cut < 0 else record["text"][: cut + 1]
            lines.append(json.dumps(record) + "\n")
    report = load_text("".join(lines), f"scifact-{start}.jsonl", "beir")
    assert len(report.papers) == n
    return report


def _env(s: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(
        ASSISTANT_CHROMA_HOST=str(s.chroma_host),
        ASSISTANT_CHROMA_PORT=str(s.chroma_port),
        ASSISTANT_COLLECTION=s.collection,
        ASSISTANT_INDEX_DIR=str(s.index_dir),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
    )
    return env


@pytest.mark.server
@pytest.mark.slow
def test_an_ingest_reaches_another_process_bm25_through_the_changelog(
    tmp_path: Path, chroma_server: tuple[str, int, Path], embedder: Any
) -> None:
    from ingest.pipeline import ingest_report

    host, port, _ = chroma_server
    collection = f"shared-{uuid.uuid4().hex[:12]}"
    writer = make_settings(tmp_path / "writer", chroma_host=host, chroma_port=port, collection=collection, ingest_window=20)
    reader = make_settings(tmp_path / "reader", chroma_host=host, chroma_port=port, collection=collection)
    first, second = short_papers(0, PRELOADED), short_papers(PRELOADED, INGESTED)
    ingest_report(writer, first, embedder=embedder)
    queries, ready, done = tmp_path / "queries.json", tmp_path / "ready", tmp_path / "done"
    queries.write_text(json.dumps([[p.id, p.title] for p in second.papers]))

    cmd = [sys.executable, "-m", "tests.lexical_asker", embedder.name, str(embedder.dim), str(queries), str(ready), str(done)]
    asker = subprocess.Popen(cmd, cwd=ROOT, env=_env(reader), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not ready.exists():
            assert asker.poll() is None, f"the asker exited: {asker.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "the asker never loaded its index"
            time.sleep(0.1)
        summary = ingest_report(writer, second, embedder=embedder)  # while the asker asks
        from assistant.index.store import open_store

        store = open_store(writer, embedder.name, embedder.dim)
        final, new_chunks = store.revision, len(store.chunk_ids([p.id for p in second.papers]))
        store.close()
        done.write_text(str(final))
        out, err = asker.communicate(timeout=600)
    finally:
        if asker.poll() is None:
            asker.kill()
            asker.wait()
    assert asker.returncode == 0, err[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    print("asker:", json.dumps({k: v for k, v in result.items() if k != "found"}))
    assert summary.added == INGESTED and new_chunks == INGESTED

    assert result["finished"] and result["revision"] >= final
    assert result["during"] > 0 and len(result["revisions"]) >= 2  # it asked while the ingest wrote, and caught up
    assert result["slow"] == 0, f"slowest question {result['max_s']:.2f} s"
    found = set(result["found"])
    assert len(found) >= 0.95 * INGESTED, f"{INGESTED - len(found)} new papers missing from BM25's top 10"
    # The transfer: the asker built once, at start, from the 150 preloaded chunks; after that it fetched only new
    # chunks: each once when the ingest finished, and those already written when it caught up with the ingest's start.
    assert result["rebuilds"] == 1
    assert new_chunks <= result["fetched"] <= 2 * new_chunks
    assert result["indexed"] == PRELOADED + INGESTED
