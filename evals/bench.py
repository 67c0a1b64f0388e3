"""`python -m assistant bench`: ingest throughput against the raw model, re-ingest, latency, load, memory, cold starts."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from assistant.config import Settings
from assistant.errors import InputError
from evals import blocks

if TYPE_CHECKING:
    from assistant.index.embed import Embedder
    from ingest.loaders import LoadReport

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def machine() -> dict[str, Any]:
    """Where the figures come from."""
    import psutil
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def store_settings(base: Settings, root: Path, collection: str) -> Settings:
    """Settings for a store kept under one folder."""
    return base.model_copy(update={"chroma_path": root / "chroma", "index_dir": root / "index", "collection": collection})


def chunk_texts(report: LoadReport, settings: Settings) -> list[str]:
    """Exactly the texts the ingest embeds for these papers."""
    from ingest.chunking import chunk_paper, embedding_text, token_counter

    count = token_counter()
    size, overlap = settings.chunk_tokens, settings.chunk_overlap
    return [embedding_text(p.title, c.text) for p in report.papers for c in chunk_paper(p, size, overlap, count)]


def raw_throughput(embedder: Embedder, texts: Sequence[str]) -> dict[str, float]:
    """The embedder alone on the texts, in the runtime ingest uses (the ONNX export or sentence-transformers): one call,
    no chunking, storing or indexing."""
    started = time.perf_counter()
    embedder.embed(texts)
    seconds = time.perf_counter() - started
    return {"chunks": len(texts), "seconds": round(seconds, 2), "chunks_per_second": round(len(texts) / seconds, 1)}


def timed_reingest(settings: Settings, corpus: Path, embedder: Embedder) -> dict[str, Any]:
    """Load and sync an unchanged corpus again, as `python -m ingest` would."""
    from ingest.loaders import load_path
    from ingest.pipeline import ingest_report

    started = time.perf_counter()
    summary = ingest_report(settings, load_path(corpus), embedder=embedder)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "unchanged": summary.unchanged, "written_chunks": summary.chunks}


def ingest_section(
    settings: Settings, corpus: Path, embedder: Embedder, *, fresh: bool, prior: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Raw model throughput on the chunk texts, then a full ingest (or a recorded one), then a re-ingest."""
    from ingest.loaders import load_path
    from ingest.pipeline import ingest_report

    report = load_path(corpus)
    texts = chunk_texts(report, settings)
    out: dict[str, Any] = {"papers": len(report.papers), "chunks": len(texts)}
    out["raw"] = raw_throughput(embedder, texts)
    if fresh:
        summary = ingest_report(settings, report, embedder=embedder).as_dict()
        out["pipeline"] = {k: summary[k] for k in ("chunks", "seconds", "chunks_per_second")}
        out["pipeline_source"] = "measured in this run"
        # Raw again afterwards: the ratio uses the mean of both, so drifting load from other processes shows up in neither alone.
        out["raw_after"] = raw_throughput(embedder, texts)
    elif prior is not None:
        out["pipeline"] = {k: prior.get(k) for k in ("chunks", "seconds", "chunks_per_second")}
        out["pipeline_source"] = "recorded ingest (--ingest-record), not this run"
    if "pipeline" in out and out["pipeline"]["chunks_per_second"]:
        raw_rates = [out[k]["chunks_per_second"] for k in ("raw", "raw_after") if k in out]
        out["ratio"] = round(float(out["pipeline"]["chunks_per_second"]) / (sum(raw_rates) / len(raw_rates)), 3)
    out["reingest"] = timed_reingest(settings, corpus, embedder)
    return out


def latency_section(settings: Settings, queries: Sequence[str], embedder: Embedder) -> dict[str, Any]:
    """Our Retriever.search against llama-index's default retriever, same store, same queries, interleaved."""
    from assistant import build_assistant
    from evals.evaluate import llamaindex_retriever
    from evals.load import paired_latency

    retriever = build_assistant(settings, embedder=embedder).retriever
    li = llamaindex_retriever(retriever.store)
    k = settings.top_k
    result = paired_latency({"ours": lambda q: retriever.search(q, k), "llamaindex": li.retrieve}, queries)
    return {
        "papers": len(retriever.store.papers()),
        "chunks": retriever.store.count(),
        **result,
        "p95_ratio": round(result["ours"]["p95_ms"] / result["llamaindex"]["p95_ms"], 2),
        "note": f"ours: Retriever.search top_k={k}, dense + BM25 fused; llama-index: as_retriever(), similarity_top_k=2, dense",
    }


Say = Callable[[str], None]


def beir_folder(args: argparse.Namespace) -> Path | None:
    """The BEIR folder for the large-corpus figures, or None when they are left out; checked before any model loads."""
    if "beir" in args.skip or (args.quick and not args.reuse):
        return None
    if not args.beir:
        raise InputError("bench needs --beir DIR, a BEIR folder (corpus.jsonl, queries.jsonl, qrels/), or --skip beir")
    folder = Path(args.beir)
    if not (folder / "corpus.jsonl").is_file():
        raise InputError(f"{folder}: not a BEIR folder (no corpus.jsonl)")
    return folder


def ingest_record(args: argparse.Namespace) -> dict[str, Any] | None:
    """The --ingest-record, checked before any model loads: it must record an ingest that wrote chunks, or the ratio
    it stands for has nothing to divide."""
    if not args.ingest_record:
        return None
    path = Path(args.ingest_record)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        rate, chunks = float(record["chunks_per_second"]), int(record["chunks"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a `python -m ingest --json` record ({type(exc).__name__}: {exc})") from None
    if chunks <= 0 or rate <= 0:
        raise InputError(f"{path}: records an ingest that wrote no chunks (a re-run?); pass the record of the full ingest")
    return dict(record)


def sample_sections(args: argparse.Namespace, sample: Settings, embedder: Embedder, say: Say) -> dict[str, Any]:
    """Ingest, latency and cold starts on the small corpus."""
    from evals.load import app_cold_start, cli_cold_start, corpus_queries, cycle_to, peak_rss_mb, store_env
    from ingest.loaders import load_path, sample_corpus_path

    corpus = Path(args.corpus) if args.corpus else sample_corpus_path()
    result: dict[str, Any] = {}
    say(f"sample ingest ({corpus.name}) ...")
    result["sample_ingest"] = ingest_section(sample, corpus, embedder, fresh=True)
    papers = load_path(corpus).papers
    say("sample latency ...")
    result["sample_latency"] = latency_section(sample, cycle_to(corpus_queries(papers), args.queries), embedder)
    env = store_env(sample.chroma_path, sample.index_dir, sample.collection)
    question = f"What is {papers[0].title}?"
    if "cli" not in args.skip:
        say("CLI cold start ...")
        result["cli_cold_start"] = cli_cold_start(env, question, runs=1 if args.quick else 3)
        result["cli_cold_start"]["peak_rss_mb"] = round(peak_rss_mb(children=True), 1)
    if "app" not in args.skip:
        say("app cold start ...")
        result["app_cold_start"] = app_cold_start(env, None if args.quick else question)
    return result


def beir_queries(beir: Path) -> list[str]:
    """The test split's queries, then the train split's that are not among them."""
    from evals.evaluate import load_split

    queries = list(load_split(beir, "test").queries.values())
    if (beir / "qrels" / "train.tsv").is_file():
        queries += [q for q in load_split(beir, "train").queries.values() if q not in queries]
    return queries


def beir_sections(args: argparse.Namespace, big: Settings, beir: Path, embedder: Embedder, say: Say) -> dict[str, Any]:
    """Ingest (fresh, reused or recorded), latency and the load run on the BEIR corpus."""
    from assistant import build_assistant
    from evals.load import cycle_to, load_run

    result: dict[str, Any] = {}
    fresh = not args.reuse  # beir_folder left out --quick without --reuse
    prior = ingest_record(args)
    say(f"{beir.name} ingest ({'fresh' if fresh else 'reused store'}) ...")
    result["beir_ingest"] = ingest_section(big, beir / "corpus.jsonl", embedder, fresh=fresh, prior=prior)
    queries = beir_queries(beir)
    say(f"{beir.name} latency ...")
    result["beir_latency"] = latency_section(big, cycle_to(queries, args.queries), embedder)
    if "load" not in args.skip:
        say(f"{beir.name} load run ...")
        retriever = build_assistant(big, embedder=embedder).retriever
        result["load"] = load_run(lambda q: retriever.search(q, big.top_k), cycle_to(queries, args.load_queries), args.threads)
    result["beir"] = str(beir)
    return result


def run_bench(args: argparse.Namespace, settings: Settings, out: TextIO) -> dict[str, Any]:
    """Every measurement, in one process, in an order that keeps the phases apart."""
    from assistant.index.embed import build_embedder
    from evals.evaluate import collection_name
    from evals.load import peak_rss_mb, rss_mb

    def say(msg: str) -> None:
        if not args.json:
            print(msg, file=out, flush=True)

    beir = beir_folder(args)
    ingest_record(args)  # a bad record fails now, not after the sample and BEIR measurements
    result: dict[str, Any] = {"command": "python -m assistant " + shlex.join(sys.argv[1:]), "machine": machine()}
    embedder = build_embedder(settings)
    embedder.embed(["warm-up"])  # model loading is nobody's throughput
    with tempfile.TemporaryDirectory(prefix="assistant-bench-") as tmp:
        result.update(sample_sections(args, store_settings(settings, Path(tmp) / "sample", "bench_sample"), embedder, say))
        if args.quick and not args.reuse:
            result["beir_skipped"] = "--quick without --reuse: no BEIR store to measure"
        elif beir is not None:
            root = Path(args.reuse) if args.reuse else Path(tmp) / "beir"
            result.update(beir_sections(args, store_settings(settings, root, collection_name(beir)), beir, embedder, say))
        result["memory"] = {"peak_rss_mb": round(peak_rss_mb(), 1), "rss_end_mb": round(rss_mb(), 1)}
    return result


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _ingest_rows(r: dict[str, Any]) -> list[str]:
    lines = []
    for key, label in (("sample_ingest", "sample"), ("beir_ingest", "SciFact")):
        s = r.get(key)
        if not s:
            continue
        if "pipeline" in s:
            raw = " / ".join(str(s[k]["chunks_per_second"]) for k in ("raw", "raw_after") if k in s)
            lines.append(
                f"| {label} ingest, {s['papers']} papers / {s['chunks']} chunks ({s['pipeline_source']}) | "
                f"{s['pipeline']['chunks_per_second']} chunks/s vs raw model {raw} chunks/s = **{s['ratio']:.0%}** "
                f"| ≥ 85% ({_mark(s['ratio'] >= 0.85)}) |"
            )
        else:
            lines.append(f"| {label} raw model throughput | {s['raw']['chunks_per_second']} chunks/s | |")
        re_ = s["reingest"]
        target = f"< 10 s ({_mark(re_['seconds'] < 10)})" if key == "beir_ingest" else ""
        what = f"{re_['unchanged']} papers unchanged, {re_['written_chunks']} chunks written"
        lines.append(f"| {label} re-ingest of the unchanged corpus ({what}) | {re_['seconds']} s | {target} |")
    return lines


def _latency_rows(r: dict[str, Any]) -> list[str]:
    lines = []
    for key, label in (("sample_latency", "sample"), ("beir_latency", "SciFact")):
        s = r.get(key)
        if not s:
            continue
        ours, li = s["ours"], s["llamaindex"]
        ok = ours["p95_ms"] <= li["p95_ms"] and (key != "beir_latency" or ours["p95_ms"] < 100)
        lines.append(
            f"| {label} retrieval latency, {s['papers']} papers, {ours['queries']} queries "
            f"| ours p50 {ours['p50_ms']} / p95 {ours['p95_ms']} ms; llama-index p50 {li['p50_ms']} / p95 {li['p95_ms']} ms; "
            f"p95 ratio {s['p95_ratio']} | p95 < 100 ms and ≤ llama-index ({_mark(ok)}) |"
        )
    if "load" in r:
        ld = r["load"]
        ok = ld["errors"] == 0 and ld["rss_growth_second_half"] <= 0.10
        lines.append(
            f"| load run: {ld['queries']} SciFact queries, {ld['threads']} threads "
            f"| {ld['errors']} errors, {ld['queries_per_second']} q/s, "
            f"p50 {ld['p50_ms']} / p95 {ld['p95_ms']} ms, RSS {ld['rss_half_mb']} → {ld['rss_end_mb']} MiB "
            f"({ld['rss_growth_second_half']:+.1%}) | 0 errors, growth ≤ 10% ({_mark(ok)}) |"
        )
    return lines


def _start_rows(r: dict[str, Any]) -> list[str]:
    lines = []
    if "cli_cold_start" in r:
        c = r["cli_cold_start"]
        ok_fig = f"{c.get('best_s')} s (runs {c.get('seconds')}), peak RSS {c.get('peak_rss_mb')} MiB"
        ok_fig += f", embedder {c.get('embedder')}"
        if "ratio_to_import_torch" in c:
            ok_fig += f'; {c["ratio_to_import_torch"]}x `python -c "import torch"` ({c["import_torch_s"]} s) in the same run'
        fig = ok_fig if c.get("ok") else f"failed: {c.get('error')}"
        ok = bool(c.get("ok")) and float(c.get("best_s", 99)) < 4
        lines.append(f"| CLI cold start (`python -m assistant ask`, import to answer) | {fig} | < 4 s ({_mark(ok)}) |")
    if "app_cold_start" in r:
        a = r["app_cold_start"]
        fig = f"health {a['health_s']} s, first page {a['first_page_s']} s" if a.get("ok") else f"not measured: {a.get('error')}"
        if "first_answer_s" in a:
            fig += f"; in chromium: chat input {a['chat_input_s']} s, first answer {a['first_answer_s']} s"
        elif "browser" in a:
            fig += f"; browser part {a['browser']}"
        lines.append(f"| app cold start (`streamlit run ui/app.py`) | {fig} | |")
    return lines


def markdown(r: dict[str, Any]) -> str:
    """The results as a Markdown block for docs/benchmarks.md."""
    m = r["machine"]
    mem = r["memory"]
    lines = [
        BEGIN,
        f"Command: `{r['command']}`  ",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB memory, Python {m['python']}, "
        f"torch threads {m['torch_threads']}, load average at start {m['load_average']}  ",
        f"Date: {m['date']}",
        "",
        "| measurement | figure | target |",
        "| --- | --- | --- |",
        *_ingest_rows(r),
        *_latency_rows(r),
        *_start_rows(r),
        f"| peak resident memory of the bench process | {mem['peak_rss_mb']} MiB (at end {mem['rss_end_mb']} MiB) | |",
        END,
    ]
    return "\n".join(lines)


def write_block(path: Path, block: str) -> None:
    """Replace this file's marked results block, or append it."""
    blocks.write_block(path, block, BEGIN, END)


def _bench(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    result = run_bench(args, settings, out)
    if args.write:
        write_block(Path(args.write), markdown(result))
    if args.json:
        print(json.dumps(result), file=out)
    else:
        print(markdown(result), file=out)
    return 0


def register(sub: Any) -> None:
    """Add the `bench` subcommand."""
    p: argparse.ArgumentParser = sub.add_parser("bench", help="measure ingest throughput, latency, load, memory and cold starts")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quick", action="store_true", help="skip the full BEIR ingest (use --reuse for BEIR latency and load)")
    p.add_argument("--reuse", metavar="DIR", help="existing store folder (DIR/chroma, DIR/index) holding the BEIR collection")
    p.add_argument("--ingest-record", metavar="FILE", help="`python -m ingest --json` output of that store's full ingest")
    p.add_argument("--corpus", help="small corpus for ingest, latency and cold starts (default: the bundled sample)")
    p.add_argument("--beir", metavar="DIR", help="BEIR folder for the large-corpus figures (required unless --skip beir)")
    p.add_argument("--queries", type=int, default=200, help="queries per latency measurement (default: 200)")
    p.add_argument("--load-queries", type=int, default=500, help="queries in the load run (default: 500)")
    p.add_argument("--threads", type=int, default=8, help="concurrent threads in the load run (default: 8)")
    p.add_argument("--skip", nargs="+", default=[], choices=["cli", "app", "beir", "load"], help="parts to leave out")
    p.add_argument("--write", metavar="FILE", help="also write the results block into this Markdown file")
    p.set_defaults(func=_bench)
