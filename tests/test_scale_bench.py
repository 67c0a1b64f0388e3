"""The scale bench at a tiny size: every figure is there and positive, the report and plot are written. No timings asserted."""

from __future__ import annotations

import argparse
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import InputError
from evals.scale import register
from evals.scale_data import HashEmbedder, load_pool, synthetic_papers
from evals.scale_plot import BEGIN, END, analyse, fit
from ingest.chunking import embedding_text
from tests.conftest import make_settings

TINY = Path(__file__).parent / "data" / "beir-tiny"
SYSTEMS = ("dense", "bm25", "fused", "llamaindex")


def scale_args(argv: list[str]) -> argparse.Namespace:
    """The arguments as `python -m assistant ... scale` would parse them, through register()."""
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["scale", *argv])


def test_synthetic_papers_have_exactly_the_chunks_asked_for() -> None:
    pool = load_pool(TINY, 20, seed=0)
    papers = list(synthetic_papers(pool, 500, seed=0, prefix="p"))
    assert sum(len(chunks) for _, chunks, _ in papers) == 500
    assert not set(pool.queries) & set(pool.sentences)  # held out
    for paper, chunks, docs in papers:
        assert [c.n for c in chunks] == list(range(len(chunks)))
        assert all(paper.abstract[a:b] for c in chunks for a, b in c.spans)
        assert docs == [embedding_text(paper.title, c.text) for c in chunks]  # as the ingest embeds and indexes them
    again = list(synthetic_papers(pool, 500, seed=0, prefix="p"))
    assert [p.abstract for p, _, _ in again] == [p.abstract for p, _, _ in papers]  # fixed seed


def test_hash_embedder_is_unit_length_and_deterministic() -> None:
    e = HashEmbedder()
    a, b = e.embed(["Cells divide by mitosis.", "the of and"])
    assert len(a) == e.dim == 384
    assert math.isclose(sum(x * x for x in a), 1.0) and math.isclose(sum(x * x for x in b), 1.0)
    assert HashEmbedder().embed_query("Cells divide by mitosis.") == a
    assert "not a language model" in e.name


def test_fit_recovers_a_power_law_and_extrapolates() -> None:
    sizes = [1e4, 1e5]
    assert fit(sizes, [2.0, 2.0 * 10**0.5]) == pytest.approx(0.5)
    assert fit(sizes[:1], [2.0]) is None
    row = {
        "chunks": 100,
        "probe": {"rss_mb": 10.0, "latency": {s: {"p50_ms": 1.0, "p95_ms": 2.0} for s in SYSTEMS}},
        "write": {"chunks_per_second": 5.0},
        "bm25_build_s": 1.0,
        "absorb": {"seconds": 0.5},
        "disk_mb": {"chroma": 3.0, "index": 1.0},
        "memory_mb": 20.0,
        "seconds": 4.0,
    }
    out = analyse({"mode": "embedded", "rows": [row], "stopped": None}, [100, 1000])
    assert out["extrapolated"][0]["chunks"] == 1000
    assert out["extrapolated"][0]["fused_p95_ms"] == pytest.approx(20.0)  # one size: linear, and labelled so
    assert "extrapolated linearly" in out["exponent_note"] and "extrapolated" in out["dominant"]


def test_missing_beir_folder_is_one_line_error(tmp_path: Path) -> None:
    args = scale_args(["--beir", str(tmp_path / "nowhere"), "--sizes", "100", "--out", str(tmp_path)])
    with pytest.raises(InputError, match="not a BEIR folder") as err:
        args.func(args, make_settings(tmp_path), io.StringIO())
    assert "\n" not in str(err.value)


def _check_row(row: dict[str, Any], size: int, queries: int) -> None:
    assert row["chunks"] == size and row["write"]["chunks"] == size
    assert row["write"]["chunks_per_second"] > 0 and row["bm25_build_s"] > 0
    assert row["absorb"]["indexed"] == size + 1000  # the reader's index took in the 1,000 new chunks
    assert row["absorb"]["seconds"] > 0 and row["absorb"]["how"]
    assert row["disk_mb"]["chroma"] > 0 and row["disk_mb"]["index"] > 0
    probe = row["probe"]
    assert 0 < probe["rss_imports_mb"] < probe["rss_mb"] <= probe["rss_with_llamaindex_mb"]
    for system in SYSTEMS:
        lat = probe["latency"][system]
        assert lat["queries"] == queries and 0 < lat["p50_ms"] <= lat["p95_ms"]
    assert row["memory_mb"] > probe["rss_mb"] and row["seconds"] > 0


@pytest.mark.slow
def test_scale_bench_smoke(tmp_path: Path) -> None:
    doc, png, stores = tmp_path / "benchmarks.md", tmp_path / "scale.png", tmp_path / "stores"
    doc.write_text("# Benchmarks\n\nearlier figures\n")
    args = scale_args(
        [
            "--beir",
            str(TINY),
            "--sizes",
            "2000",
            "--modes",
            "embedded",
            "--queries",
            "20",
            "--out",
            str(stores),
            "--write",
            str(doc),
            "--plot",
            str(png),
            "--json",
        ]
    )
    out = io.StringIO()
    assert args.func(args, make_settings(tmp_path), out) == 0
    result = json.loads(out.getvalue())
    mode = result["modes"]["embedded"]
    assert [r["chunks"] for r in mode["rows"]] == [2000] and mode["stopped"] is None and mode["extrapolated"] == []
    _check_row(mode["rows"][0], 2000, 20)
    assert "not a language model" in result["embedder"] and mode["dominant"]
    assert not (stores / "embedded-2000").exists()  # each size's store is removed unless --keep
    assert result["plot"].startswith("drawn") and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nearlier figures\n") and text.count(BEGIN) == text.count(END) == 1
    block = text[text.index(BEGIN) : text.index(END)]
    assert "| 2,000 |" in block and "Embedded Chroma" in block and "scale.png" in block
