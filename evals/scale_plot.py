"""The scale bench's report: growth exponents, extrapolation past the sizes reached, the Markdown block and the plot."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evals import blocks

BEGIN, END = "<!-- scale:begin -->", "<!-- scale:end -->"
Row = dict[str, Any]


def _latency(system: str, stat: str = "p95_ms") -> Callable[[Row], float | None]:
    return lambda r: r["probe"]["latency"][system][stat]


# Each figure: label and how to read it from a measured row; the fitted exponent and extrapolation use these.
FIGURES: dict[str, tuple[str, Callable[[Row], float | None]]] = {
    "dense_p95_ms": ("dense p95 ms", _latency("dense")),
    "bm25_p95_ms": ("BM25 p95 ms", _latency("bm25")),
    "fused_p95_ms": ("fused p95 ms", _latency("fused")),
    "llamaindex_p95_ms": ("llama-index p95 ms", _latency("llamaindex")),
    "query_rss_mb": ("query process RSS MiB", lambda r: r["probe"]["rss_mb"]),
    "server_rss_mb": ("server RSS MiB", lambda r: r.get("server_rss_mb")),
    "write_chunks_per_s": ("write chunks/s", lambda r: r["write"]["chunks_per_second"]),
    "bm25_build_s": ("BM25 build s", lambda r: r["bm25_build_s"]),
    "absorb_s": ("absorb 1,000 chunks s", lambda r: r["absorb"]["seconds"]),
    "disk_mb": ("disk MiB", lambda r: r["disk_mb"]["chroma"] + r["disk_mb"]["index"]),
    "memory_mb": ("memory of all processes MiB", lambda r: r["memory_mb"]),
    "seconds": ("seconds for the size", lambda r: r["seconds"]),
}
PLOTTED_LATENCY = ("dense_p95_ms", "bm25_p95_ms", "fused_p95_ms", "llamaindex_p95_ms")
PLOTTED_MEMORY = ("query_rss_mb", "server_rss_mb")


def machine() -> dict[str, Any]:
    """Where the figures come from (without importing torch, which would swell the bench's own memory)."""
    import psutil

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name"))
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def fit(sizes: Sequence[float], values: Sequence[float | None]) -> float | None:
    """Growth exponent: least-squares slope of log(value) against log(size); None below two positive points."""
    points = [(s, v) for s, v in zip(sizes, values, strict=True) if v is not None and v > 0]
    if len({s for s, _ in points}) < 2:
        return None
    x, y = np.log([s for s, _ in points]), np.log([v for _, v in points])
    return float(np.polyfit(x, y, 1)[0])


def project(sizes: Sequence[float], values: Sequence[float], size: float) -> float:
    """A figure at `size` from the largest measured one, growing with the fitted exponent (linear from one point)."""
    exponent = fit(sizes, values)
    return float(values[-1] * (size / sizes[-1]) ** (1.0 if exponent is None else exponent))


def analyse(sweep: dict[str, Any], sizes: Sequence[int]) -> dict[str, Any]:
    """The sweep with each figure's exponent, the sizes not reached extrapolated, and the dominant query part."""
    rows: list[Row] = sweep["rows"]
    reached = [r["chunks"] for r in rows]
    exponents: dict[str, float | None] = {}
    for key, (_, read) in FIGURES.items():
        exponents[key] = fit(reached, [read(r) for r in rows])
    extrapolated: list[Row] = []
    for size in (s for s in sizes if rows and s > reached[-1]):
        row: Row = {"chunks": size}
        for key, (_, read) in FIGURES.items():
            last = read(rows[-1])
            if last is not None:
                exponent = exponents[key] if exponents[key] is not None else 1.0
                row[key] = round(float(last) * (size / reached[-1]) ** exponent, 1)
        extrapolated.append(row)
    out = {
        **sweep,
        "exponents": {k: None if v is None else round(v, 3) for k, v in exponents.items()},
        "extrapolated": extrapolated,
        "exponent_note": "least-squares slope over the sizes reached"
        if len(rows) > 1
        else "one size reached: no exponent fitted; larger sizes extrapolated linearly (exponent 1)",
    }
    out["dominant"] = dominant(rows, extrapolated)
    return out


def dominant(rows: Sequence[Row], extrapolated: Sequence[Row]) -> str:
    """Which part of a fused query costs most at the largest size (measured or extrapolated)."""
    if not rows:
        return "no size was measured"
    if extrapolated:
        last, how = extrapolated[-1], "extrapolated"
        parts = {k: float(last.get(k, 0.0)) for k in ("dense_p95_ms", "bm25_p95_ms", "fused_p95_ms")}
    else:
        last, how = rows[-1], "measured"
        parts = {k: float(FIGURES[k][1](last) or 0.0) for k in ("dense_p95_ms", "bm25_p95_ms", "fused_p95_ms")}
    # Retriever.search runs the two searches side by side, so the slower one is on the query's path.
    rest = parts["fused_p95_ms"] - max(parts["dense_p95_ms"], parts["bm25_p95_ms"])
    shares = {
        "dense search": parts["dense_p95_ms"],
        "BM25 search": parts["bm25_p95_ms"],
        "fusion and the papers' records": max(rest, 0.0),
    }
    top = max(shares, key=lambda k: shares[k])
    listed = ", ".join(f"{k} {v:.1f} ms" for k, v in shares.items())
    return (
        f"at {last['chunks']:,} chunks ({how}), of fused p95 {parts['fused_p95_ms']:.1f} ms: {listed} (the two "
        f"searches run side by side; the rest is the fused p95 beyond the slower one); **{top}** dominates"
    )


# -- Markdown ---------------------------------------------------------------------------------------------------


def _pair(r: Row, system: str) -> str:
    lat = r["probe"]["latency"][system]
    return f"{lat['p50_ms']} / {lat['p95_ms']}"


def _measured_cells(r: Row) -> list[str]:
    ratio = r["probe"]["latency"]["fused"]["p95_ms"] / r["probe"]["latency"]["llamaindex"]["p95_ms"]
    ab = r["absorb"]
    return [
        f"{r['chunks']:,}",
        f"{r['write']['chunks_per_second']:,.0f}",
        f"{r['bm25_build_s']}",
        f"{ab['seconds']} ({ab['ratio_to_rebuild']:.2f}× rebuild; {ab['how']})",
        _pair(r, "dense"),
        _pair(r, "bm25"),
        _pair(r, "fused"),
        _pair(r, "llamaindex"),
        f"{ratio:.2f}",
        f"{r['probe']['rss_mb']:,.0f}",
        f"{r['server_rss_mb']:,.0f}" if "server_rss_mb" in r else "-",
        f"{r['disk_mb']['chroma']:,.0f} + {r['disk_mb']['index']:,.0f}",
    ]


def _extrapolated_cells(r: Row) -> list[str]:
    def at(key: str, fmt: str = "{:,.1f}") -> str:
        return ("~" + fmt.format(r[key])) if key in r else "-"

    ratio = r["fused_p95_ms"] / r["llamaindex_p95_ms"] if r.get("llamaindex_p95_ms") else None
    return [
        f"*{r['chunks']:,} (extrapolated)*",
        at("write_chunks_per_s", "{:,.0f}"),
        at("bm25_build_s"),
        at("absorb_s"),
        "~ / " + at("dense_p95_ms")[1:],
        "~ / " + at("bm25_p95_ms")[1:],
        "~ / " + at("fused_p95_ms")[1:],
        "~ / " + at("llamaindex_p95_ms")[1:],
        f"~{ratio:.2f}" if ratio else "-",
        at("query_rss_mb", "{:,.0f}"),
        at("server_rss_mb", "{:,.0f}"),
        at("disk_mb", "{:,.0f}"),
    ]


HEADER = [
    "chunks",
    "write chunks/s",
    "BM25 build s",
    "absorb 1,000 new chunks s",
    "dense p50 / p95 ms",
    "BM25 (chunks + papers) p50 / p95 ms",
    "fused p50 / p95 ms",
    "llama-index p50 / p95 ms",
    "fused p95 / llama-index p95",
    "query process RSS MiB",
    "server RSS MiB",
    "disk MiB (Chroma + BM25)",
]
EXPONENT_KEYS = [
    None,
    "write_chunks_per_s",
    "bm25_build_s",
    "absorb_s",
    "dense_p95_ms",
    "bm25_p95_ms",
    "fused_p95_ms",
    "llamaindex_p95_ms",
    None,
    "query_rss_mb",
    "server_rss_mb",
    "disk_mb",
]
MODE_TITLES = {"embedded": "Embedded Chroma", "server": "Chroma server (`chroma run`, HTTP on loopback)"}


def _exponent_cells(m: dict[str, Any]) -> list[str]:
    cells = ["growth exponent"]
    for key in EXPONENT_KEYS[1:]:
        value = m["exponents"].get(key) if key else None
        cells.append("-" if value is None else f"{round(value, 2) + 0.0:+.2f}")  # + 0.0: no "-0.00"
    return cells


def mode_section(mode: str, m: dict[str, Any]) -> list[str]:
    """One mode's table, exponents, where it stopped and what dominates."""
    lines = [f"#### {MODE_TITLES.get(mode, mode)}", "", "| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    lines += ["| " + " | ".join(_measured_cells(r)) + " |" for r in m["rows"]]
    lines += ["| " + " | ".join(_extrapolated_cells(r)) + " |" for r in m["extrapolated"]]
    if len(m["rows"]) > 1:
        lines.append("| " + " | ".join(_exponent_cells(m)) + " |")
    lines.append("")
    stop = m.get("stopped")
    reached = f"{m['rows'][-1]['chunks']:,} chunks" if m["rows"] else "no size"
    lines.append(f"Reached {reached}." + (f" Stopped at {stop['at']:,} chunks: {stop['why']}." if stop else ""))
    lines.append(f"Exponents: {m['exponent_note']}. {m['dominant'][0].upper()}{m['dominant'][1:]}.")
    if m["rows"]:
        ab = m["rows"][-1]["absorb"]
        lines.append(f"Absorbing 1,000 chunks: `{ab['api']}`, {ab['how']}.")
    return [*lines, ""]


def markdown(r: dict[str, Any], plot_path: Path | None = None, doc: Path | None = None) -> str:
    """The results as a Markdown block for docs/benchmarks.md (the plot linked relative to the document)."""
    m = r["machine"]
    lines = [
        BEGIN,
        f"### Scale: the store and the indexes from {r['sizes'][0]:,} to {r['sizes'][-1]:,} chunks",
        "",
        f"Command: `{r['command']}`  ",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB memory, Python {m['python']}, "
        f"load average at start {m['load_average']}  ",
        f"Date: {m['date']}  ",
        f"Texts: sentences of `{r['beir']}` recombined into synthetic abstracts of 5-10 sentences; "
        f"{r['queries']} held-out sentences are the queries.  ",
        f"Vectors: **`{r['embedder']}`**, a hashing embedder and not a language model, so these figures are the store's "
        "and the indexes' alone; MiniLM's own rate is `python -m assistant bench`'s.  ",
        f"Latency and RSS are measured in a separate query process; each size has a budget of {r['budget_s']:.0f} s and "
        f"stops before a size projected past {r['max_memory_gb']:g} GiB. Rows marked *extrapolated* are on paper, "
        "from the growth exponents.",
        "",
    ]
    for mode, section in r["modes"].items():
        lines += mode_section(mode, section)
    if plot_path is not None and str(r.get("plot", "")).startswith("drawn"):
        link = os.path.relpath(plot_path, doc.parent) if doc is not None else str(plot_path)
        lines.append(f"![p95 latency and query-process memory against collection size, log-log]({link})")
    lines.append(END)
    return "\n".join(lines)


def write_block(path: Path, block: str) -> None:
    """Replace this file's marked results block, or append it."""
    blocks.write_block(path, block, BEGIN, END)


# -- the plot ---------------------------------------------------------------------------------------------------


def _series(m: dict[str, Any], key: str) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(measured points, extrapolated points joined to the last measured one) of one figure."""
    read = FIGURES[key][1]
    measured = [(int(r["chunks"]), float(v)) for r in m["rows"] if (v := read(r)) is not None]
    guessed = [(int(r["chunks"]), float(r[key])) for r in m["extrapolated"] if key in r]
    return measured, ([measured[-1], *guessed] if measured and guessed else [])


def plot(r: dict[str, Any], path: Path) -> str:
    """Log-log p95 latency and memory against size, per mode: solid measured, dotted extrapolated."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "not drawn: matplotlib is not installed (pip install matplotlib)"
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    markers = {"embedded": "o", "server": "s"}
    for ax, keys, title in ((axes[0], PLOTTED_LATENCY, "p95 latency (ms)"), (axes[1], PLOTTED_MEMORY, "resident memory (MiB)")):
        for i, key in enumerate(keys):
            for mode, m in r["modes"].items():
                measured, guessed = _series(m, key)
                if not measured:
                    continue
                colour = f"C{i}"
                ax.plot(
                    *zip(*measured, strict=True),
                    marker=markers.get(mode, "^"),
                    color=colour,
                    linestyle="-" if mode == "embedded" else "--",
                    label=f"{FIGURES[key][0]} ({mode})",
                )
                if guessed:
                    ax.plot(*zip(*guessed, strict=True), color=colour, linestyle=":", alpha=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("chunks in the collection")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Scale bench (hashing embedder, not a language model); dotted: extrapolated", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"drawn: {path}"
