"""`python -m evals.scale`: how the store and the indexes cost as a collection grows from 10^4 to 10^6 chunks.

At each size, in embedded Chroma and on a `chroma run` server: write throughput through the store API, the BM25
build, dense / BM25 / fused query latency against llama-index's retriever over the same collection (in a separate
query process, whose resident memory is the memory figure), the time to absorb 1,000 new chunks into the lexical
side, and disk used. Texts are recombined SciFact sentences; vectors come from a hashing embedder that is not a
language model (evals/scale_data.py), so MiniLM's cost is left out on purpose.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from assistant.config import Settings, load_settings
from assistant.errors import AssistantError, ConfigError, InputError
from assistant.index.changelog import Change
from assistant.index.store import ChunkStore
from evals.scale_data import (
    CONTENT_HASH,
    ChunkedPaper,
    HashEmbedder,
    SentencePool,
    Site,
    batches,
    load_pool,
    site_for,
    synthetic_papers,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
ABSORB_CHUNKS = 1_000
LLAMAINDEX_TOP_K = 10
INCREMENTAL_BELOW = 0.5  # absorbing faster than half a rebuild cannot be a full rebuild
Say = Callable[[str], None]


class OverBudget(AssistantError):
    """A size ran past its time budget."""


@dataclass(frozen=True)
class Plan:
    """What every size of the sweep shares."""

    base: Settings
    pool: SentencePool
    queries_file: Path
    sizes: tuple[int, ...]
    seed: int
    batch: int
    budget_s: float
    max_memory_mb: float
    keep: bool


# -- measuring one size ----------------------------------------------------------------------------------------


def write_collection(store: ChunkStore, papers: Iterable[ChunkedPaper], batch: int, deadline: float) -> dict[str, Any]:
    """Write papers through the store API in batches; chunks/s counts store time only, not the hashing embedder's."""
    embedder = HashEmbedder()
    chunks, embed_s, write_s, written = 0, 0.0, 0.0, set[str]()
    for group in batches(papers, batch):
        started = time.perf_counter()
        items = [(p, CONTENT_HASH, c, docs, embedder.embed(docs)) for p, c, docs in group]
        embedded = time.perf_counter()
        chunks += store.write_papers(items)
        written.update(chunk.id for _, _, cs, _, _ in items for chunk in cs)
        write_s += time.perf_counter() - embedded
        embed_s += embedded - started
        if time.monotonic() > deadline:
            raise OverBudget(f"time budget spent while writing, after {chunks} chunks")
    started = time.perf_counter()
    store.bump_revision(Change(added=frozenset(written)))  # readers absorb these chunks from the changelog
    write_s += time.perf_counter() - started
    return {
        "chunks": chunks,
        "seconds": round(write_s, 2),
        "chunks_per_second": round(chunks / write_s, 1),
        "hash_embed_seconds": round(embed_s, 2),
    }


def probe_env(settings: Settings) -> dict[str, str]:
    """Environment for a query process on this store."""
    from evals.load import store_env

    env = store_env(settings.chroma_path, settings.index_dir, settings.collection)
    env["ASSISTANT_TOP_K"] = str(settings.top_k)
    if settings.chroma_host:
        env.update(ASSISTANT_CHROMA_HOST=settings.chroma_host, ASSISTANT_CHROMA_PORT=str(settings.chroma_port))
    return env


def run_probe(settings: Settings, queries_file: Path, timeout: float) -> dict[str, Any]:
    """Latency and resident memory measured in a fresh query process (`--probe`), so the bench's own memory is left out."""
    cmd = [sys.executable, "-m", "evals.scale", "--probe", str(queries_file)]
    try:
        proc = subprocess.run(cmd, env=probe_env(settings), cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise OverBudget(f"time budget spent in the query process (after {timeout:.0f} s)") from None
    if proc.returncode != 0:
        raise AssistantError(f"the query process failed: {proc.stderr.strip()[-400:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def absorb(store: ChunkStore, folder: Path, plan: Plan, rebuild_s: float) -> dict[str, Any]:
    """Write 1,000 new chunks, then time the public lexical API bringing a reader's index to the new revision."""
    from assistant.index.lexical import LexicalCache

    cache = LexicalCache(store, folder)
    cache.refresh()  # a reader holding the index at the old revision
    new = synthetic_papers(plan.pool, ABSORB_CHUNKS, plan.seed + 1, "new")
    write_collection(store, new, plan.batch, float("inf"))
    started = time.perf_counter()
    index = cache.refresh()
    seconds = time.perf_counter() - started
    ratio = seconds / rebuild_s if rebuild_s else float("nan")
    how = "incremental" if ratio < INCREMENTAL_BELOW else "as slow as a full rebuild: no incremental path"
    return {
        "chunks": ABSORB_CHUNKS,
        "seconds": round(seconds, 3),
        "ratio_to_rebuild": round(ratio, 3),
        "indexed": index.count,
        "how": how,
        "api": "LexicalCache.refresh() after the revision moved",
    }


def measure(plan: Plan, site: Site, size: int, deadline: float) -> dict[str, Any]:
    """Every figure at one size, on one store."""
    from assistant.index.lexical import LexicalIndex, rebuild
    from assistant.index.paths import lexical_folder
    from assistant.index.store import open_store
    from evals.load import peak_rss_mb
    from evals.scale_data import disk_mb, process_rss_mb

    embedder, settings = HashEmbedder(), site.settings
    folder = lexical_folder(settings)
    LexicalIndex.build(["warm-up"], ["importing bm25s and the stemmer is nobody's build time"], 0)
    store = open_store(settings, embedder.name, embedder.dim)
    row: dict[str, Any] = {"chunks": size}
    try:
        row["write"] = write_collection(store, synthetic_papers(plan.pool, size, plan.seed, "p"), plan.batch, deadline)
        started = time.perf_counter()
        rebuild(store, folder)
        row["bm25_build_s"] = round(time.perf_counter() - started, 2)
        row["disk_mb"] = {"chroma": disk_mb(site.data), "index": disk_mb(settings.index_dir)}
    finally:
        store.close()  # an embedded store admits one process at a time: the query process is next
    row["probe"] = run_probe(settings, plan.queries_file, max(30.0, deadline - time.monotonic()))
    if site.server_pid is not None:
        row["server_rss_mb"] = process_rss_mb(site.server_pid)
    store = open_store(settings, embedder.name, embedder.dim)
    try:
        row["absorb"] = absorb(store, folder, plan, row["bm25_build_s"])
    finally:
        store.close()
    row["bench_peak_rss_mb"] = round(peak_rss_mb(), 1)
    row["memory_mb"] = round(row["probe"]["rss_mb"] + row.get("server_rss_mb", 0.0) + row["bench_peak_rss_mb"], 1)
    return row


# -- the sweep --------------------------------------------------------------------------------------------------


def projected_stop(rows: list[dict[str, Any]], size: int, plan: Plan) -> str | None:
    """Why `size` will not fit, projected from the sizes already measured (None when it should)."""
    from evals.scale_plot import project

    if not rows:
        return None
    sizes = [r["chunks"] for r in rows]
    memory = project(sizes, [r["memory_mb"] for r in rows], size)
    if memory > plan.max_memory_mb:
        return f"projected memory {memory / 1024:.1f} GiB > the {plan.max_memory_mb / 1024:.0f} GiB limit (--max-memory-gb)"
    seconds = project(sizes, [r["seconds"] for r in rows], size)
    if seconds > plan.budget_s:
        return f"projected time {seconds:.0f} s > the {plan.budget_s:.0f} s budget per size (--budget-s)"
    return None


def sweep(plan: Plan, mode: str, root: Path, say: Say) -> dict[str, Any]:
    """Every size in one mode, smallest first, until one does not fit."""
    rows: list[dict[str, Any]] = []
    stopped: dict[str, Any] | None = None
    for size in plan.sizes:
        why = projected_stop(rows, size, plan)
        if why is not None:
            stopped = {"at": size, "why": why}
            break
        say(f"{mode}: {size:,} chunks ...")
        started, folder = time.monotonic(), root / f"{mode}-{size}"
        try:
            with site_for(plan.base, mode, folder) as site:
                row = measure(plan, site, size, started + plan.budget_s)
        except OverBudget as exc:
            stopped = {"at": size, "why": str(exc)}
            break
        finally:
            if not plan.keep:
                shutil.rmtree(folder, ignore_errors=True)
        row["seconds"] = round(time.monotonic() - started, 1)
        rows.append(row)
        say(f"  done in {row['seconds']} s: fused p95 {row['probe']['latency']['fused']['p95_ms']} ms")
    return {"mode": mode, "rows": rows, "stopped": stopped}


# -- the query process ------------------------------------------------------------------------------------------


def probe(queries_file: Path) -> dict[str, Any]:
    """In a fresh process: open the store and the lexical index as the app does, run the queries, report latency
    and resident memory (before llama-index is imported, and after)."""
    from assistant.index.lexical import LexicalCache
    from assistant.index.paths import lexical_folder
    from assistant.index.store import open_store
    from assistant.retrieval.retriever import FusionParams, Retriever
    from evals.load import paired_latency, rss_mb
    from evals.scale_data import llamaindex_retriever

    rss_imports = rss_mb()
    settings, embedder = load_settings(_env_file=None), HashEmbedder()
    store = open_store(settings, embedder.name, embedder.dim, create=False)
    lexical = LexicalCache(store, lexical_folder(settings))
    params = FusionParams.from_settings(settings)  # as build_assistant makes them
    retriever, n, k = Retriever(store, embedder, lexical, params), settings.candidate_chunks, settings.top_k
    started = time.perf_counter()
    lexical.get()
    load_s = time.perf_counter() - started
    queries: list[str] = json.loads(queries_file.read_text(encoding="utf-8"))
    ours: dict[str, Callable[[str], Any]] = {
        "dense": lambda q: store.nearest(embedder.embed_query(q), n),  # embedding + HNSW search, ids only
        # chunk BM25 and, when fusion weighs it, paper BM25 (assistant/index/paper_bm25.py): the fused path's BM25 work
        "bm25": lambda q: (lexical.get().search(q, n), retriever.papers_bm25(q, n)),
        "fused": lambda q: retriever.search(q, k),  # both of the above side by side, fusion, fetching k papers' chunks
    }
    for q in queries:  # one full pass first, so the memory figure is a serving process's, not a fresh one's
        for run in ours.values():
            run(q)
    rss = rss_mb()
    li = llamaindex_retriever(store.collection, embedder, LLAMAINDEX_TOP_K)
    latency = paired_latency({**ours, "llamaindex": li.retrieve}, queries)
    return {
        "rss_imports_mb": round(rss_imports, 1),
        "rss_mb": round(rss, 1),
        "rss_with_llamaindex_mb": round(rss_mb(), 1),
        "bm25_load_s": round(load_s, 3),
        "latency": latency,
        "queries": len(queries),
        "note": f"dense and BM25: {n} candidates each (BM25: over chunks, and over papers when paper_share "
        f"{params.paper_share} > 0); fused: Retriever.search top_k={k}; "
        f"llama-index: VectorStoreIndex.as_retriever(similarity_top_k={LLAMAINDEX_TOP_K})",
    }


# -- the command ------------------------------------------------------------------------------------------------


def make_plan(args: argparse.Namespace, settings: Settings, root: Path) -> Plan:
    if not args.beir:
        raise InputError("the scale bench needs --beir DIR, a BEIR folder whose corpus.jsonl gives the sentences")
    pool = load_pool(Path(args.beir), args.queries, args.seed)
    root.mkdir(parents=True, exist_ok=True)
    queries_file = root / "queries.json"
    queries_file.write_text(json.dumps(list(pool.queries)), encoding="utf-8")
    return Plan(
        settings,
        pool,
        queries_file,
        tuple(sorted(set(args.sizes))),
        args.seed,
        args.batch,
        args.budget_s,
        args.max_memory_gb * 1024,
        args.keep,
    )


def run_scale(args: argparse.Namespace, settings: Settings, say: Say) -> dict[str, Any]:
    """Every mode's sweep, then the fits and extrapolations."""
    from evals.scale_plot import analyse, machine

    result: dict[str, Any] = {
        "command": "python -m evals.scale " + shlex.join(sys.argv[1:]),
        "machine": machine(),
        "embedder": HashEmbedder().name,
        "beir": str(args.beir),
        "modes": {},
    }
    with tempfile.TemporaryDirectory(prefix="assistant-scale-") as tmp:
        root = Path(args.out) if args.out else Path(tmp)
        plan = make_plan(args, settings, root)
        result.update(
            sizes=list(plan.sizes), queries=len(plan.pool.queries), budget_s=plan.budget_s, max_memory_gb=args.max_memory_gb
        )
        for mode in args.modes:
            result["modes"][mode] = analyse(sweep(plan, mode, root, say), plan.sizes)
    return result


def _scale(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from evals.scale_plot import markdown, plot, write_block

    def say(msg: str) -> None:
        if not args.json:
            print(msg, file=out, flush=True)

    result = run_scale(args, settings, say)
    result["plot"] = plot(result, Path(args.plot)) if args.plot else "not drawn (--plot '')"
    block = markdown(result, Path(args.plot) if args.plot else None, Path(args.write) if args.write else None)
    if args.write:
        write_block(Path(args.write), block)
    print(json.dumps(result) if args.json else block, file=out)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--beir", metavar="DIR", help="BEIR folder whose corpus.jsonl gives titles and sentences (e.g. SciFact)")
    p.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="collection sizes in chunks")
    p.add_argument("--modes", nargs="+", choices=["embedded", "server"], default=["embedded", "server"])
    p.add_argument("--out", metavar="DIR", help="folder for the stores (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep each size's store in --out instead of removing it")
    p.add_argument("--write", metavar="FILE", help="also write the results block into this Markdown file")
    p.add_argument("--plot", metavar="PNG", default="docs/scale.png", help="log-log plot (default: docs/scale.png)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--queries", type=int, default=200, help="held-out sentences used as queries (default: 200)")
    p.add_argument("--budget-s", type=float, default=1200.0, help="time budget per size and mode (default: 1200)")
    p.add_argument("--max-memory-gb", type=float, default=16.0, help="stop before a size projected to need more")
    p.add_argument("--batch", type=int, default=2000, help="chunks per write call (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the recombination (default: 0)")


def register(sub: Any) -> None:
    """Add the `scale` subcommand."""
    p: argparse.ArgumentParser = sub.add_parser("scale", help="cost curve of the store and indexes to 10^6 chunks")
    add_arguments(p)
    p.set_defaults(func=_scale)


def main(argv: list[str] | None = None) -> int:
    from assistant.runtime import prepare_runtime

    p = argparse.ArgumentParser(prog="python -m evals.scale", description=__doc__.splitlines()[0] if __doc__ else None)
    add_arguments(p)
    p.add_argument("--probe", metavar="QUERIES", help=argparse.SUPPRESS)  # the query process's entry point
    args = p.parse_args(argv)
    try:
        if args.probe:  # lean on purpose: its memory is the figure, and prepare_runtime imports transformers
            print(json.dumps(probe(Path(args.probe))))
            return 0
        settings = load_settings()
        prepare_runtime(settings)
        return _scale(args, settings, sys.stdout)
    except (InputError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
