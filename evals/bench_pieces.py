"""`python -m evals.bench_pieces`: what word-piece vectors cost a question, as a ratio to the same pipeline without them.

Two assistants over one store: the local embedder (sentence and word-piece vectors from one pass), and the same
embedder seen through the plain `Embedder` interface (no word pieces; the scorer then counts those features at their
mean). Questions alternate between the two; "cold" empties the evidence cache before each question, so every
retrieved abstract is embedded again, "warm" asks with the abstracts already embedded. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.config import load_settings
from assistant.index.embed import Embedder, LocalEmbedder
from assistant.runtime import prepare_runtime
from evals.evaluate import load_questions
from evals.load import paired_latency, rss_mb


class SentenceOnly:
    """An embedder's plain interface: no `embed_with_pieces`, as a remote endpoint."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return self.inner.embed(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def measure(questions: Sequence[str], rounds: int) -> dict[str, Any]:
    """Paired latencies of both assistants, cold and warm, and the ratios with/without."""
    from assistant import build_assistant

    settings = load_settings()
    local = LocalEmbedder(settings.embedding_model, settings.embedding_batch_size)
    with_pieces = build_assistant(settings, embedder=local)
    without = build_assistant(settings, embedder=SentenceOnly(local), store=with_pieces.store)
    qs = list(questions) * rounds

    def cold(assistant: Any) -> Any:
        def run(q: str) -> Any:
            assistant.evidence.clear_cache()
            return assistant.ask(q)

        return run

    report: dict[str, Any] = {"questions": len(questions), "rounds": rounds, "backend": local.backend}
    report["cold"] = paired_latency({"pieces": cold(with_pieces), "plain": cold(without)}, qs)
    report["warm"] = paired_latency({"pieces": with_pieces.ask, "plain": without.ask}, qs)
    for kind in ("cold", "warm"):
        r = report[kind]
        r["p50_ratio"] = round(r["pieces"]["p50_ms"] / r["plain"]["p50_ms"], 3)
        r["mean_ratio"] = round(r["pieces"]["mean_ms"] / r["plain"]["mean_ms"], 3)
    report["rss_mib"] = round(rss_mb(), 1)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.bench_pieces", description=(__doc__ or "").splitlines()[0])
    p.add_argument("questions", type=Path, help="question set JSONL (the sample's, over the configured store)")
    p.add_argument("--rounds", type=int, default=2, help="times each question is asked per assistant and kind")
    args = p.parse_args(argv)
    prepare_runtime(load_settings())
    questions = [q["question"] for q in load_questions(args.questions)]
    print(json.dumps(measure(questions, args.rounds), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
