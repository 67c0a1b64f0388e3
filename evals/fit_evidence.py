"""`python -m evals.fit_evidence`: fit the evidence scorer on SciFact claims (plus optional labelled questions).

Stages, each cached under --cache so a refit takes seconds:
1. collect: retrieve the top k papers for each question with the real retriever and label every sentence;
2. features: the scorer's feature rows (sentence and word-piece vectors embedded once per abstract, kept on disk by
   `fit_vectors`), for each candidate piece bar, the one with the lowest cross-validated log-loss kept;
3. fit: grouped cross-validation (AUC, calibration, bars, answer-level figures), then a final fit on everything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from assistant.answering import asking, scorer
from assistant.answering.scorer import FEATURES, PARAMS_PATH, DocFreqTermStats, PaperSentences, feature_matrix
from assistant.config import Settings
from assistant.text import sentences as sentence_code
from assistant.text import words
from evals import fit_vectors
from evals.claim_cv import Options, cross_validate_claims, final_claim_model
from evals.evidence_cv import assign_folds, cross_validate, final_fit, out_of_fold, row_weights
from evals.fit_cache import code_digest, digest, records_key
from evals.fit_vectors import SentenceVectors

if TYPE_CHECKING:
    from assistant.answering.pipeline import Assistant
    from assistant.models import PaperHit

# The code that computes the features (this module splits the sentences) and the embedding model key the feature cache.
FEATURE_CODE = (scorer, asking, words, sentence_code, fit_vectors, sys.modules[__name__])

_SPACE = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


# -- labels -------------------------------------------------------------------------------------------


def overlap_labels(abstract: str, gold: Sequence[str]) -> list[int]:
    """1 for each sentence sharing at least half of the shorter of itself and a gold sentence, by characters.

    Gold sentences come from another splitter (SciFact's, or a person's copy), so spans are matched by overlap.
    """
    spans = sentence_code.sentence_spans(abstract) or [(0, len(abstract))]
    gold_spans = []
    for g in gold:
        at = abstract.find(_norm(g))
        if at >= 0:
            gold_spans.append((at, at + len(_norm(g))))
    labels = []
    for s, e in spans:
        hit = any(min(e, ge) - max(s, gs) >= 0.5 * min(e - s, ge - gs) for gs, ge in gold_spans)
        labels.append(int(hit))
    return labels


@dataclass(frozen=True)
class Question:
    """One labelled question: the text asked, which papers answer it and which are acceptable to cite."""

    id: str
    text: str
    answerable: bool
    gold: dict[str, list[str]]  # paper key (SciFact id or casefolded title) -> gold sentences
    acceptable: tuple[str, ...]
    history: tuple[str, ...] = ()


def claim_question(claim: str) -> str:
    """How `eval claims` asks a claim."""
    return f"Is it true that {claim.strip().rstrip('.')}?"


def load_claims(path: Path) -> list[Question]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            c = json.loads(line)
            gold = {doc: list(ev["rationales"]) for doc, ev in c["evidence"].items()}
            out.append(Question(str(c["id"]), claim_question(c["claim"]), bool(gold), gold, tuple(c["cited_doc_ids"])))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise SystemExit(f"error: {path}:{n}: not a SciFact claim ({exc})") from None
    return out


def off_domain(q: Question) -> Question:
    """The question asked of a collection from another field: nothing there answers it."""
    return Question("x-" + q.id, q.text, False, {}, (), q.history)


def load_extra(path: Path) -> list[Question]:
    """Questions in the question-set format with "evidence": [{"title", "sentence"}]; papers are keyed by title."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            q = json.loads(line)
            gold: dict[str, list[str]] = {_norm(t).casefold(): [] for t in q.get("gold", [])}
            for ev in q.get("evidence", []):
                gold.setdefault(_norm(ev["title"]).casefold(), []).append(ev["sentence"])
            acceptable = tuple(_norm(t).casefold() for t in q.get("acceptable", []))
            out.append(Question(str(q["qid"]), q["question"], bool(gold), gold, acceptable, tuple(q.get("history", []))))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise SystemExit(f"error: {path}:{n}: bad labelled question ({exc})") from None
    return out


# -- collection -------------------------------------------------------------------------------------


def _paper_key(hit: PaperHit, by_title: bool) -> str:
    return _norm(hit.title).casefold() if by_title else hit.paper_id


def collect(assistant: Assistant, questions: Sequence[Question], k: int, by_title: bool) -> list[dict[str, Any]]:
    """Retrieve and label: one record per question, with its papers' sentence labels and its query vector."""
    records = []
    for i, q in enumerate(questions):
        text = assistant.standalone(q.text, q.history) if q.history else q.text
        vector = assistant.embedder.embed_query(text)
        hits = assistant.retriever.search(text, k, None, vector)
        papers = []
        for hit in hits:
            key = _paper_key(hit, by_title)
            labels = overlap_labels(hit.abstract, q.gold.get(key, []))
            papers.append({"paper_id": hit.paper_id, "key": key, "title": hit.title, "score": hit.score,
                           "dense": hit.dense, "abstract": hit.abstract, "labels": labels})  # fmt: skip
        records.append({"id": q.id, "question": text, "answerable": q.answerable, "gold": sorted(q.gold),
                        "acceptable": sorted(q.acceptable), "papers": papers, "vector": vector})  # fmt: skip
        if (i + 1) % 100 == 0:
            print(f"retrieved {i + 1}/{len(questions)}", file=sys.stderr, flush=True)
    return records


def term_stats(assistant: Assistant) -> DocFreqTermStats:
    """Document frequencies of stems over the collection's chunks (what BM25 indexes)."""
    return DocFreqTermStats.from_texts(doc or "" for _, doc, _ in assistant.store.iter_chunks())


def source_records(
    settings: Settings, questions: Sequence[Question], args: argparse.Namespace, tag: str
) -> tuple[list[dict[str, Any]], DocFreqTermStats]:
    """Records and term statistics for one question source, from the cache when the inputs are unchanged."""
    from assistant import build_assistant

    key = records_key(tag, [q.__dict__ for q in questions], settings, args.k)
    path = Path(args.cache) / f"evidence-records-{tag}-{key}.json"
    if path.exists():
        data = json.loads(path.read_text())
        return data["records"], DocFreqTermStats(data["doc_freq"], data["n_docs"])
    assistant = build_assistant(settings)
    records = collect(assistant, questions, args.k, by_title=tag != "scifact")
    stats = term_stats(assistant)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"records": records, "doc_freq": stats.doc_freq, "n_docs": stats.n_docs}))
    return records, stats


# -- features ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """The per-sentence feature table and what the answer-level figures need to regroup it."""

    x: np.ndarray
    y: np.ndarray
    question: np.ndarray  # question index of each row
    paper: np.ndarray  # paper rank of each row within its question
    answerable: np.ndarray  # per question
    good: list[set[int]]  # per question: ranks of papers that are gold evidence
    fine: list[set[int]]  # per question: ranks of papers acceptable to cite (gold, or cited by the claim's source)
    source: np.ndarray  # per question: 0 SciFact, 1 extra
    piece_bar: float = 1.0  # the cosine at which the piece_share column counts a word piece as matched


def features_for(
    records: Sequence[dict[str, Any]], stats: DocFreqTermStats, vectors: SentenceVectors, piece_bar: float
) -> list[np.ndarray]:
    vectors.prefetch([(p["paper_id"], p["abstract"]) for r in records for p in r["papers"]])
    asked = vectors.question_pieces([r["question"] for r in records], piece_bar)
    out = []
    for r in records:
        papers = []
        for p in r["papers"]:
            spans = sentence_code.sentence_spans(p["abstract"]) or [(0, len(p["abstract"]))]
            sentences = tuple(p["abstract"][s:e] for s, e in spans)
            papers.append(PaperSentences(p["paper_id"], p["title"], p["score"], p["dense"], sentences,
                                         vectors.get(p["paper_id"], p["abstract"]),
                                         vectors.pieces(p["paper_id"], p["abstract"])))  # fmt: skip
        out.append(feature_matrix(r["question"], r["vector"], papers, stats, asked[r["question"]]))
    return out


def build_table(sources: Sequence[tuple[list[dict[str, Any]], list[np.ndarray]]], piece_bar: float = 1.0) -> Table:
    xs, ys, qs, ps, answerable, good, fine, src = [], [], [], [], [], [], [], []
    qi = 0
    for s, (records, mats) in enumerate(sources):
        for r, mat in zip(records, mats, strict=True):
            gold, ok = set(r["gold"]), set(r["gold"]) | set(r["acceptable"])
            for rank, p in enumerate(r["papers"]):
                ys.extend(p["labels"])
                ps.extend([rank] * len(p["labels"]))
            qs.extend([qi] * len(mat))
            xs.append(mat)
            answerable.append(r["answerable"])
            good.append({rank for rank, p in enumerate(r["papers"]) if p["key"] in gold})
            fine.append({rank for rank, p in enumerate(r["papers"]) if p["key"] in ok})
            src.append(s)
            qi += 1
    return Table(np.vstack(xs), np.asarray(ys), np.asarray(qs), np.asarray(ps), np.asarray(answerable), good, fine,
                 np.asarray(src), piece_bar)  # fmt: skip


def feature_table(args: argparse.Namespace, piece_bar: float) -> tuple[Table, dict[str, Any]]:
    """The table for SciFact (and --extra) at one piece bar, from the npz cache when nothing it depends on changed."""
    from assistant.index.embed import build_embedder

    base = Settings()
    scifact = Settings(chroma_path=args.chroma_path or base.chroma_path, index_dir=args.index_dir or base.index_dir,
                       collection=args.collection)  # fmt: skip
    parts: list[tuple[str, Settings, list[Question]]] = [("scifact", scifact, load_claims(Path(args.claims)))]
    if args.extra:
        extra = Settings(chroma_path=args.extra_chroma_path or base.chroma_path,
                         index_dir=args.extra_index_dir or base.index_dir, collection=args.extra_collection)  # fmt: skip
        extra_qs = [q for f in args.extra for q in load_extra(Path(f))]
        parts.append(("extra", extra, extra_qs))
        if args.cross:
            # Off-domain questions have no evidence in the other collection: the far negatives SciFact's near-miss
            # claims never show (a biomedical claim against CS abstracts, a CS question against biomedical ones).
            claims = parts[0][2]
            parts.append(("cross", extra, [off_domain(q) for q in claims[:: max(1, len(claims) // args.cross)]]))
            parts.append(("cross-cs", scifact, [off_domain(q) for q in extra_qs]))
    loaded = [(tag, *source_records(s, qs, args, tag)) for tag, s, qs in parts]
    inputs = [(tag, len(recs), digest(json.dumps(recs, sort_keys=True))) for tag, recs, _ in loaded]
    key = digest(code_digest(FEATURE_CODE), base.embedding_model, inputs, piece_bar)
    path = Path(args.cache) / f"evidence-features-{key}.npz"
    if not path.exists():
        vectors = SentenceVectors(Path(args.cache), build_embedder(base))
        mats = [features_for(recs, stats, vectors, piece_bar) for _, recs, stats in loaded]
        np.savez_compressed(path, *[m for ms in mats for m in ms])
    stored = np.load(path)
    flat = [stored[f"arr_{i}"] for i in range(len(stored.files))]
    sources, at = [], 0
    for _, recs, _ in loaded:
        sources.append((recs, flat[at : at + len(recs)]))
        at += len(recs)
    data = {tag: {"questions": len(recs), "answerable": sum(r["answerable"] for r in recs)} for tag, recs, _ in loaded}
    return build_table(sources, piece_bar), data


# -- command ------------------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser, claims_required: bool = True) -> None:
    if claims_required:
        p.add_argument("--claims", required=True, help="SciFact claims with rationales (claims_train.jsonl)")
    p.add_argument("--collection", default="scifact", help="collection holding the SciFact corpus")
    p.add_argument("--chroma-path", type=Path, default=None, help="store of that collection (default: the settings')")
    p.add_argument("--index-dir", type=Path, default=None, help="BM25 index folder of that store (default: the settings')")
    p.add_argument("--extra", nargs="+", default=None, help="labelled questions JSONL files (question-set format plus evidence)")
    p.add_argument("--extra-collection", default="papers", help="collection the --extra questions were written over")
    p.add_argument("--extra-chroma-path", type=Path, default=None, help="store of the --extra collection")
    p.add_argument("--extra-index-dir", type=Path, default=None, help="BM25 index folder of the --extra store")
    p.add_argument("--cache", default=".evidence-cache", help="folder for retrieval records, sentence vectors, features")
    p.add_argument("--out", type=Path, default=PARAMS_PATH, help="where the fitted parameters are written")
    p.add_argument("--k", type=int, default=5, help="papers retrieved per question")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds, grouped by question")
    p.add_argument("--l2", type=float, default=1.0, help="L2 penalty on the standardised weights")
    p.add_argument(
        "--cross",
        type=int,
        default=0,
        help="add about N SciFact claims asked of the --extra collection, and "
        "the --extra questions asked of SciFact, as off-domain questions with no evidence (0: none)",
    )
    p.add_argument("--extra-weight", type=float, default=1.0, help="weight of an --extra sentence against a SciFact one")
    p.add_argument("--seed", type=int, default=0, help="seed of the fold assignment")
    p.add_argument(
        "--piece-bars",
        type=float,
        nargs="+",
        default=[0.7, 0.75, 0.8, 0.85, 0.9],
        help="candidate cosines at which a word piece counts as matched; the lowest cross-validated log-loss wins",
    )
    p.add_argument("--dry-run", action="store_true", help="report only; leave the parameters file alone")


def choose_piece_bar(args: argparse.Namespace) -> tuple[float, dict[str, float]]:
    """The candidate piece bar whose features give the lowest out-of-fold log-loss of the sentence model, and each
    candidate's loss."""
    losses = {}
    for bar in args.piece_bars:
        table, _ = feature_table(args, bar)
        weight = row_weights(table, args.extra_weight)
        folds = assign_folds(table, args.folds, args.seed)
        oof = np.clip(out_of_fold(table, np.arange(len(table.answerable)), folds, args.l2, weight), 1e-9, 1 - 1e-9)
        loss = -(table.y * np.log(oof) + (1 - table.y) * np.log(1 - oof))
        losses[f"{bar:g}"] = round(float(np.sum(weight[table.question] * loss) / np.sum(weight[table.question])), 6)
    best = min(args.piece_bars, key=lambda b: losses[f"{b:g}"])
    return best, losses


def committed_piece_bar(args: argparse.Namespace) -> float:
    """The piece bar of the fitted parameters in --out, for commands that reuse the fit's feature table."""
    bar = scorer.load_model(args.out).piece_bar
    if bar is None:
        raise SystemExit(f"error: {args.out}: no fitted piece bar; run python -m evals.fit_evidence first")
    return bar


def run(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    bar, losses = choose_piece_bar(args)
    table, data = feature_table(args, bar)
    cv, oof = cross_validate(table, args.folds, args.l2, args.seed, args.extra_weight)
    cv["piece_bar_log_loss"] = losses
    model = final_fit(table, args.l2, oof, args.extra_weight)
    options = Options(args.l2, args.folds, args.seed, args.extra_weight)
    cv["claims"] = cross_validate_claims(table, oof, options)
    claim_model = final_claim_model(table, oof, options)
    weights = dict(zip(FEATURES, (round(float(w), 4) for w in model.weights), strict=True))
    report = {"cv": cv, "weights": weights, "bias": round(model.bias, 4),
              "refusal_bar": round(model.refusal_bar, 4), "cite_bar": round(model.cite_bar, 4), "piece_bar": bar,
              "claims": {"refusal_bar": round(claim_model.refusal_bar, 4),
                         "cite_bar": round(claim_model.cite_bar, 4)}}  # fmt: skip
    params = {
        "model": model.to_dict(),
        "claims": claim_model.to_dict(),
        "provenance": {
            "command": "python -m evals.fit_evidence " + " ".join(argv),
            "data": {"claims": str(args.claims), "extra": args.extra, "questions": data},
            "date": dt.date.today().isoformat(),
            "examples": len(table.y),
            "positives": int(table.y.sum()),
            "l2": args.l2,
            "extra_weight": args.extra_weight,
            "k": args.k,
        },
        "cv": cv,
    }
    if not args.dry_run:
        if args.out.exists():  # the summary bar (evals.fit_summary) and quote ranker (evals.quote_cv) live here too
            old = json.loads(args.out.read_text(encoding="utf-8"))
            params.update({key: old[key] for key in ("summary", "quotes") if old.get(key)})
        args.out.write_text(json.dumps(params, indent=1) + "\n", encoding="utf-8")
        report["written"] = str(args.out)
    return report


def register(sub: Any) -> None:
    """Add `fit-evidence` to an argparse subparsers object."""
    p = sub.add_parser("fit-evidence", help="fit the evidence scorer on SciFact claims and write its parameters")
    add_arguments(p)
    p.set_defaults(func=_fit_command)


def _fit_command(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    print(json.dumps(run(args, _own_arguments(sys.argv[1:])), indent=1), file=out)
    return 0


def _own_arguments(argv: Sequence[str]) -> list[str]:
    """The arguments after the subcommand, for the provenance line (`python -m assistant eval fit-evidence ...`)."""
    argv = list(argv)
    return argv[argv.index("fit-evidence") + 1 :] if "fit-evidence" in argv else argv


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m evals.fit_evidence", description=__doc__.splitlines()[0] if __doc__ else "")
    add_arguments(p)
    args = p.parse_args(argv)
    from assistant.runtime import prepare_runtime

    prepare_runtime(Settings())
    print(json.dumps(run(args, argv), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
