"""The asking side of test_lexical_shared.py, run as its own process: BM25 questions against a shared Chroma server.

Usage: python -m tests.lexical_asker MODEL DIM QUERIES_JSON READY_FILE DONE_FILE (settings from ASSISTANT_ variables).
QUERIES_JSON holds [[paper id, title], ...]. Asks the titles round after round, each question timed from the
cache lookup to the chunks fetched, as the retriever's BM25 path does. Writes READY_FILE once its index is loaded.
Stops once DONE_FILE (holding the ingest's final revision) exists, its index has reached that revision and it has
asked every title once more. Prints one JSON line: timings, the papers its BM25 found, and the lexical cache's
counters (chunks fetched by updates, full builds).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

DEADLINE_S = 600.0


def main(argv: list[str]) -> int:
    from assistant.config import load_settings
    from assistant.index.lexical import LexicalCache
    from assistant.index.paths import lexical_folder
    from assistant.index.store import open_store

    model, dim, queries_file, ready, done = argv
    settings = load_settings()
    store = open_store(settings, model, int(dim), create=False)
    cache = LexicalCache(store, lexical_folder(settings), recheck_s=0.05)
    first = cache.get()
    queries = [(pid, title) for pid, title in json.loads(Path(queries_file).read_text())]
    Path(ready).write_text(str(first.revision))
    seconds: list[float] = []
    during = 0  # questions answered before the ingest was over
    revisions: set[int] = set()  # of the indexes that answered
    found: set[str] = set()
    final, last_pass = None, False
    started = time.monotonic()
    while time.monotonic() - started < DEADLINE_S:
        found = set()  # the last pass's, once at the final revision
        for pid, title in queries:
            t0 = time.perf_counter()
            index = cache.get()
            ranked = index.search(title, 10)
            passages = store.get([cid for cid, _ in ranked])
            seconds.append(time.perf_counter() - t0)
            if pid in {p.paper_id for p in passages}:
                found.add(pid)
            during += final is None
            revisions.add(index.revision)
        if last_pass:
            break
        if final is None and Path(done).exists():
            final = int(Path(done).read_text())
        if final is not None:
            cache.get()  # notices the final revision if nothing has yet
            latest = cache.wait(120)
            last_pass = latest is not None and latest.revision >= final
    index = cache.wait(120) or first
    out = {
        "questions": len(seconds),
        "max_s": max(seconds),
        "slow": sum(s > 1.0 for s in seconds),
        "during": during,
        "revisions": sorted(revisions),
        "found": sorted(found),
        "fetched": cache.fetched,
        "rebuilds": cache.rebuilds,
        "first_revision": first.revision,
        "revision": index.revision,
        "indexed": index.count,
        "finished": last_pass,
    }
    print(json.dumps(out))
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
