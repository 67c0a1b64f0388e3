"""`python -m assistant eval`: retrieval quality on a BEIR dataset and answer quality on a question set."""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from assistant.config import Settings
from assistant.errors import InputError
from evals.metrics import (
    POINT_MATCH,
    answer_points,
    citation_precision,
    mean_scores,
    point_coverage,
    retrieval_scores,
    title_recall,
)

if TYPE_CHECKING:
    from assistant.answering.pipeline import Assistant
    from assistant.index.store import ChunkStore
    from assistant.models import Answer, Passage
    from assistant.retrieval.retriever import Retriever

DEPTH = 100  # papers ranked per query: recall@100 needs that many
ROWS = ("pipeline", "dense", "bm25", "llamaindex")
ROW_LABELS = {
    "pipeline": "our pipeline (hybrid, Retriever.search)",
    "dense": "dense only (MiniLM chunks, max per paper)",
    "bm25": "BM25 only (bm25s chunks, max per paper)",
    "llamaindex": "llama-index VectorStoreIndex default retriever",
}
Ranker = Callable[[str], list[str]]


# -- BEIR ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BeirSplit:
    """Queries of one split with their graded relevant documents."""

    name: str
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def collection_name(folder: Path) -> str:
    """A Chroma-safe collection name from the dataset folder (3-63 characters of [A-Za-z0-9._-])."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", folder.resolve().name).strip("-._") or "beir"
    return (name if len(name) >= 3 else f"{name}-beir")[:63]


def load_split(folder: Path, split: str = "test", limit: int | None = None) -> BeirSplit:
    """Queries and qrels of a BEIR split; queries keep the qrels file's order, so --limit is stable."""
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise InputError(f"{qrels_path}: no such qrels file (split {split!r})")
    qrels: dict[str, dict[str, int]] = {}
    for i, line in enumerate(qrels_path.read_text(encoding="utf-8").splitlines()):
        parts = line.strip().split("\t")
        if len(parts) < 3 or (i == 0 and not parts[2].lstrip("-").isdigit()):
            continue  # header or blank line
        qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    texts: dict[str, str] = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                texts[str(obj["_id"])] = str(obj["text"])
    ids = [q for q in qrels if q in texts and any(g > 0 for g in qrels[q].values())]
    if limit:
        ids = ids[:limit]
    return BeirSplit(split, {q: texts[q] for q in ids}, {q: qrels[q] for q in ids})


def ensure_ingested(settings: Settings, folder: Path, out: TextIO | None = None) -> dict[str, Any]:
    """Sync the dataset's corpus into its collection; a no-op apart from the hash check when already there."""
    from ingest.loaders import load_path
    from ingest.pipeline import ingest_report

    summary = ingest_report(settings, load_path(folder))
    if out is not None and (summary.added or summary.updated):
        print(f"ingested {folder}: {summary.line()}", file=out)
    return summary.as_dict()


def papers_in_order(passages: Iterable[Passage | Any], key: Callable[[Any], str], n: int = DEPTH) -> list[str]:
    """Paper ids by first occurrence in a chunk ranking: a paper ranks where its best chunk does."""
    seen: dict[str, None] = {}
    for item in passages:
        seen.setdefault(key(item), None)
        if len(seen) >= n:
            break
    return list(seen)


@lru_cache(maxsize=1)
def _hf_embedding() -> Any:
    """llama-index's HuggingFaceEmbedding of the packaged MiniLM, loaded once per process."""
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    from assistant.index.embed import packaged_model_path

    return HuggingFaceEmbedding(model_name=str(packaged_model_path()), device="cpu")


def llamaindex_retriever(store: ChunkStore, depth: int | None = None) -> Any:
    """llama-index's default VectorStoreIndex retriever over our Chroma collection with the same MiniLM
    (its default similarity_top_k when depth is None)."""
    from llama_index.core import VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore

    index = VectorStoreIndex.from_vector_store(ChromaVectorStore(chroma_collection=store.collection), embed_model=_hf_embedding())
    return index.as_retriever() if depth is None else index.as_retriever(similarity_top_k=depth)


def node_paper(node: Any) -> str:
    """The paper of a llama-index hit, from the metadata our store writes."""
    meta = node.node.metadata or {}
    return str(meta.get("paper_id") or node.node.node_id.rsplit(":", 1)[0])


def rankers(retriever: Retriever, rows: Sequence[str], depth: int = DEPTH) -> dict[str, Ranker]:
    """One query -> ranked paper ids function per requested row."""
    # A paper has a few chunks, so 3x chunk depth gives 100 distinct papers for recall@100.
    chunk_depth = depth * 3
    out: dict[str, Ranker] = {}
    if "pipeline" in rows:
        out["pipeline"] = lambda q: [h.paper_id for h in retriever.search(q, depth)]
    if "dense" in rows:
        out["dense"] = lambda q: papers_in_order((p for p, _ in retriever.dense(q, chunk_depth)), lambda p: p.paper_id, depth)
    if "bm25" in rows:
        out["bm25"] = lambda q: papers_in_order((p for p, _ in retriever.bm25(q, chunk_depth)), lambda p: p.paper_id, depth)
    if "llamaindex" in rows:
        li = llamaindex_retriever(retriever.store, chunk_depth)
        out["llamaindex"] = lambda q: papers_in_order(li.retrieve(q), node_paper, depth)
    return out


def evaluate_retrieval(retriever: Retriever, split: BeirSplit, rows: Sequence[str] = ROWS) -> list[dict[str, Any]]:
    """Mean nDCG@10, recall@10, recall@100 and MRR@10 per row, every row over the same queries."""
    results = []
    for name, rank in rankers(retriever, rows).items():
        rank("warm-up query")  # model loading is not retrieval time
        per_query = []
        started = time.perf_counter()
        for qid, text in split.queries.items():
            per_query.append(retrieval_scores(rank(text), split.qrels[qid]))
        seconds = time.perf_counter() - started
        means = mean_scores(per_query)
        row: dict[str, Any] = {"row": name, "system": ROW_LABELS[name], "split": split.name, "queries": len(per_query)}
        row.update({k: round(v, 4) if v is not None else None for k, v in means.items()})
        row["ms_per_query"] = round(1000 * seconds / max(1, len(per_query)), 1)
        results.append(row)
    return results


def _retrieval(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from assistant import build_assistant

    folder = Path(args.beir)
    if not (folder / "corpus.jsonl").is_file():
        raise InputError(f"{folder}: not a BEIR folder (no corpus.jsonl)")
    if not args.collection:
        settings = settings.model_copy(update={"collection": collection_name(folder)})
    overrides = {
        "fusion": args.fusion, "dense_weight": args.dense_weight, "candidate_chunks": args.candidates,
        "paper_lexical_share": args.paper_share,
    }  # fmt: skip
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    split = load_split(folder, args.split, args.limit)
    ensure_ingested(settings, folder, None if args.json else out)
    retriever = build_assistant(settings).retriever
    tuned = {k: v for k, v in (("normalise", args.normalise), ("rrf_k", args.rrf_k)) if v is not None}
    retriever.params = replace(retriever.params, **tuned)
    rows = evaluate_retrieval(retriever, split, args.rows or ROWS)
    if args.json:
        print(json.dumps(rows), file=out)
        return 0
    print(f"{folder.name} {split.name} split, {len(split.queries)} queries, collection {settings.collection!r}", file=out)
    print(f"{'system':<50} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'MRR@10':>7} {'ms/q':>7}", file=out)
    for r in rows:
        figures = f"{r['ndcg@10']:>8.4f} {r['recall@10']:>7.4f} {r['recall@100']:>7.4f} {r['mrr@10']:>7.4f}"
        print(f"{r['system']:<50} {figures} {r['ms_per_query']:>7.1f}", file=out)
    return 0


# -- questions ----------------------------------------------------------------------------------------

QUESTION_METRICS = ("recall_at_5", "citation_recall", "citation_precision", "refusal_accuracy", "false_refusals", "answer_points")
# LLM mode only: shares of the answer's sentences the citation check supports and flags, answers shown with the
# extractive evidence because most of them was flagged, and the LLM judge beside the lexical answer-point measure.
LLM_METRICS = ("supported_share", "flagged_share", "evidence_shown", "answer_points_llm", "judge_agreement")


def load_questions(path: Path) -> list[dict[str, Any]]:
    """The question set, one JSON object a line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    out = []
    for i, line in enumerate(lines, 1):
        if line.strip():
            try:
                q = json.loads(line)
            except ValueError:
                raise InputError(f"{path}:{i}: not a JSON object") from None
            out.append(_checked_question(q, f"{path}:{i}"))
    return out


def _checked_question(q: object, where: str) -> dict[str, Any]:
    """One question record, or a one-line error naming the field that is wrong."""
    if not isinstance(q, dict):
        raise InputError(f"{where}: not a JSON object")
    if not isinstance(q.get("question"), str) or not q["question"].strip():
        raise InputError(f"{where}: field 'question' must be a non-empty string")
    if not isinstance(q.get("type", ""), str):
        raise InputError(f"{where}: field 'type' must be a string")
    for field in ("history", "gold", "acceptable", "answer_points"):
        value = q.get(field, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            hint = " (the earlier user questions)" if field == "history" else ""
            raise InputError(f"{where}: field {field!r} must be a list of strings{hint}")
    return q


def score_answer(q: dict[str, Any], answer: Answer) -> dict[str, Any]:
    """Every question metric for one answer; None where a metric does not apply to the question type."""
    gold, acceptable = list(q.get("gold", [])), list(q.get("acceptable", []))
    found = [e.title for e in answer.evidence]
    cited = [c.title for c in answer.citations]
    answerable = bool(gold)
    # An unanswerable question's only point is "says the corpus does not answer": a refusal states it.
    points = answer_points(q.get("answer_points", []), answer.text) if answerable else float(answer.refused)
    support = answer.support
    return {
        "qid": q.get("qid"),
        "type": q.get("type", "unknown"),
        "refused": answer.refused,
        "mode": answer.mode,
        "recall_at_5": title_recall(found, gold, 5),
        "citation_recall": title_recall(cited, gold) if answerable else None,
        "citation_precision": citation_precision(cited, gold, acceptable),
        "refusal_accuracy": None if answerable else float(answer.refused),
        "false_refusals": int(answer.refused) if answerable else None,
        "answer_points": points,
        "supported_share": support.supported / support.sentences if support and support.sentences else None,
        "flagged_share": support.flagged / support.sentences if support and support.sentences else None,
        "evidence_shown": float(answer.fallback is not None) if support else None,
        "papers": found[:5],
        "cited": cited,
    }


def judge_points(assistant: Assistant, points: Sequence[str], answer: str) -> list[bool] | None:
    """The LLM judge's verdict on each answer point (stated or not); None when the judge fails or says nothing."""
    from assistant.errors import LLMError

    if assistant.llm is None or not points:
        return None
    listing = "\n".join(f"{i}. {p}" for i, p in enumerate(points, 1))
    messages = [
        {"role": "system", "content": "You grade answers. Reply with one line per point: the point number, then yes or no."},
        {"role": "user", "content": f"Answer:\n{answer}\n\nPoints:\n{listing}\n\nDoes the answer state each point?"},
    ]
    try:
        reply = assistant.llm.complete(messages, max_tokens=12 * len(points) + 20).text
    except LLMError:
        return None
    verdicts = {int(m.group(1)): m.group(2).lower() == "yes" for m in re.finditer(r"(\d+)\W+(yes|no)\b", reply, re.IGNORECASE)}
    if not verdicts:
        return None
    return [bool(verdicts.get(i)) for i in range(1, len(points) + 1)]


def judged(points: Sequence[str], answer: str, verdicts: list[bool] | None) -> dict[str, float | None]:
    """The judge's share of points stated, and the share of points on which it agrees with the lexical measure."""
    if not verdicts:
        return {"answer_points_llm": None, "judge_agreement": None}
    lexical = [point_coverage(p, answer) >= POINT_MATCH for p in points]
    agree = sum(1 for a, b in zip(verdicts, lexical, strict=True) if a == b)
    return {"answer_points_llm": sum(verdicts) / len(points), "judge_agreement": agree / len(points)}


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means of the question metrics; false_refusals is a count of answerable questions refused."""
    keys = [*QUESTION_METRICS, *LLM_METRICS]
    means = mean_scores([{k: r.get(k) for k in keys if k in r} for r in rows])
    out: dict[str, Any] = {k: (round(v, 4) if v is not None else None) for k, v in means.items()}
    out["false_refusals"] = sum(r["false_refusals"] or 0 for r in rows)
    out["refused"] = sum(1 for r in rows if r["refused"])
    out["questions"] = len(rows)
    return out


def evaluate_questions(assistant: Assistant, questions: Sequence[dict[str, Any]], judge: bool = False) -> dict[str, Any]:
    """Run each question through Assistant.ask and score it: overall, by type and per question."""
    rows = []
    for q in questions:
        started = time.perf_counter()
        answer = assistant.ask(q["question"], history=list(q.get("history", [])))
        row = score_answer(q, answer)
        if judge and q.get("gold"):
            points = list(q.get("answer_points", []))
            row.update(judged(points, answer.text, judge_points(assistant, points, answer.text)))
        row["seconds"] = round(time.perf_counter() - started, 3)
        rows.append(row)
    types = list(dict.fromkeys(r["type"] for r in rows))
    return {
        "overall": aggregate(rows),
        "by_type": {t: aggregate([r for r in rows if r["type"] == t]) for t in types},
        "questions": rows,
        "extractive": assistant.llm is None,
        "point_match": POINT_MATCH,
    }


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def _questions(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from assistant import build_assistant

    questions = load_questions(Path(args.file))  # a bad file fails before the store is opened
    assistant = build_assistant(settings)
    report = evaluate_questions(assistant, questions, judge=assistant.llm is not None)
    if args.json:
        print(json.dumps(report, ensure_ascii=False), file=out)
        return 0
    cols = [*QUESTION_METRICS] + (list(LLM_METRICS) if assistant.llm is not None else [])
    print(f"{'type':<14}{'n':>4}" + "".join(f"{c:>20}" for c in cols), file=out)
    for name, agg in [*report["by_type"].items(), ("overall", report["overall"])]:
        print(f"{name:<14}{agg['questions']:>4}" + "".join(f"{_fmt(agg.get(c)):>20}" for c in cols), file=out)
    mode = "extractive" if assistant.llm is None else assistant.describe_llm()
    print(f"({mode}; answer point stated when ≥{POINT_MATCH:.0%} of its content words appear in the answer)", file=out)
    return 0


def register(sub: Any) -> None:
    """Add the `eval retrieval` and `eval questions` subcommands."""
    p: argparse.ArgumentParser = sub.add_parser("eval", help="measure retrieval and answer quality")
    kinds = p.add_subparsers(dest="eval_command", required=True)
    r = kinds.add_parser("retrieval", help="nDCG@10, recall@10/100 and MRR@10 on a BEIR dataset, four systems side by side")
    r.add_argument("--beir", required=True, help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    r.add_argument("--split", default="test", help="qrels split (default: test)")
    r.add_argument("--limit", type=int, help="only the first N queries of the split")
    r.add_argument("--rows", nargs="+", choices=ROWS, help="systems to run (default: all four)")
    r.add_argument("--collection", help="collection to use (default: named after the dataset folder)")
    r.add_argument("--fusion", choices=["weighted", "rrf"], help="override ASSISTANT_FUSION for this run")
    r.add_argument("--dense-weight", type=float, help="override ASSISTANT_DENSE_WEIGHT for this run")
    r.add_argument("--normalise", choices=["zscore", "minmax"], help="score normalisation of weighted fusion (default: zscore)")
    r.add_argument("--rrf-k", type=int, help="k of reciprocal rank fusion (default: 60)")
    r.add_argument("--candidates", type=int, help="override ASSISTANT_CANDIDATE_CHUNKS for this run")
    r.add_argument("--paper-share", type=float, help="override ASSISTANT_PAPER_LEXICAL_SHARE for this run (0: chunk BM25 only)")
    r.add_argument("--json", action="store_true", help="print a JSON array with one object per system")
    r.set_defaults(func=_retrieval)
    q = kinds.add_parser("questions", help="answer a question set and score retrieval, citations, refusals and answer points")
    q.add_argument("file", help="questions JSONL (qid, type, question, history, gold, acceptable, answer_points)")
    q.add_argument("--collection", help="collection the questions are about (default: ASSISTANT_COLLECTION)")
    q.add_argument("--json", action="store_true", help='print {"overall", "by_type", "questions"} as one JSON object')
    q.set_defaults(func=_questions)
    from evals import claims, fit_evidence

    claims.register(kinds)
    fit_evidence.register(kinds)
