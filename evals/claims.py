"""`python -m assistant eval claims FILE`: SciFact claims asked through `Assistant.ask`, scored at the answer level.

Each claim is asked as "Is it true that <claim>?". For claims with evidence it reports false refusals, doc recall (an
evidence abstract is cited), rationale hit (a quoted sentence of a cited evidence abstract is a gold rationale) and
citation precision (cited abstracts that are evidence or that the claim's source cites); for NEI claims the share
refused. With `--folds K --cache DIR` (and the fit command's store arguments) each claim is answered by a model fitted
without its fold, as `evals.fit_evidence` cross-validates; without it, the committed model answers.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from assistant.answering.scorer import EvidenceModel
from assistant.config import Settings, with_options
from assistant.models import Answer
from evals.fit_evidence import Question, add_arguments, claim_question, committed_piece_bar, feature_table, load_claims

ARGS = argparse.Namespace


def fold_models(args: ARGS) -> tuple[list[EvidenceModel], list[EvidenceModel], list[EvidenceModel], np.ndarray]:
    """Per fold, the evidence model and the claim-check model, each fitted with its bars without that fold's claims,
    the quote ranker fitted without them, and the fold of each claim."""
    from evals.claim_cv import Options, fold_claim_models
    from evals.evidence_cv import _fit, assign_folds, fit_bars, groups_of, out_of_fold, row_weights
    from evals.quote_cv import fit_on

    table, _ = feature_table(args, committed_piece_bar(args))
    groups, weight = groups_of(table), row_weights(table, args.extra_weight)
    folds = assign_folds(table, args.folds, args.seed)
    everything = np.arange(len(table.answerable))
    models, rankers = [], []
    for f in range(args.folds):
        train_q = everything[folds != f]
        model = _fit(table, np.flatnonzero(np.isin(table.question, train_q)), args.l2, weight)
        inner = out_of_fold(table, train_q, assign_folds(table, args.folds - 1, args.seed + 1 + f), args.l2, weight)
        bars = fit_bars(table, groups, inner, [int(q) for q in train_q])
        models.append(replace(model, refusal_bar=bars[0], cite_bar=bars[1], piece_bar=table.piece_bar))
        rankers.append(fit_on(table, groups, [int(q) for q in train_q], args.l2, args.extra_weight))
    return models, fold_claim_models(table, Options(args.l2, args.folds, args.seed, args.extra_weight)), rankers, folds


def _quoted(answer: Answer, paper_id: str) -> list[str]:
    return [s.text for c in answer.citations if c.paper_id == paper_id for s in c.quotes]


def score_claim(claim: Question, answer: Answer) -> dict[str, Any]:
    """One claim's answer-level figures."""
    cited = [c.paper_id for c in dict.fromkeys(answer.citations)] if not answer.refused else []
    row: dict[str, Any] = {"id": claim.id, "answerable": claim.answerable, "refused": answer.refused, "cited": cited}
    if not claim.answerable:
        return row
    good = [p for p in cited if p in claim.gold]
    row["doc_hit"] = bool(good)
    quoted_gold = any(any(r.strip() in q or q in r for r in claim.gold[p] for q in _quoted(answer, p)) for p in good)
    row["rationale_hit"] = quoted_gold if any(claim.gold.values()) else None  # undefined without rationale sentences
    fine = set(claim.gold) | set(claim.acceptable)
    row["precision"] = len([p for p in cited if p in fine]) / len(cited) if cited else None
    return row


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    ev = [r for r in rows if r["answerable"]]
    nei = [r for r in rows if not r["answerable"]]
    precisions = [r["precision"] for r in ev if r.get("precision") is not None]
    with_rationales = [r for r in ev if r.get("rationale_hit") is not None]
    n = max(len(ev), 1)
    return {
        "claims": len(rows),
        "evidence_claims": len(ev),
        "false_refusals": round(sum(r["refused"] for r in ev) / n, 4),
        "doc_recall": round(sum(bool(r.get("doc_hit")) for r in ev) / n, 4),
        "rationale_hit": round(float(np.mean([bool(r["rationale_hit"]) for r in with_rationales])), 4)
        if with_rationales
        else None,
        "citation_precision": round(float(np.mean(precisions)), 4) if precisions else None,
        "nei_claims": len(nei),
        "nei_refusal_rate": round(sum(r["refused"] for r in nei) / len(nei), 4) if nei else None,
    }


def summarise_unlabelled(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Figures for claims whose label (evidence or NEI) is unknown: the share refused, and doc recall and citation
    precision over every claim, counting the listed documents as evidence."""
    precisions = [r["precision"] for r in rows if r.get("precision") is not None]
    n = max(len(rows), 1)
    return {
        "claims": len(rows),
        "labelled": False,
        "refused": round(sum(r["refused"] for r in rows) / n, 4),
        "doc_recall": round(sum(bool(r.get("doc_hit")) for r in rows) / n, 4),
        "citation_precision": round(float(np.mean(precisions)), 4) if precisions else None,
    }


def beir_claims(folder: Path, split: str) -> list[Question]:
    """The queries of a BEIR split as claims whose relevant documents count as evidence; no rationale sentences.

    Unlabelled: SciFact's BEIR qrels also list the cited, on-topic abstracts of its NEI claims (304 of the 809 train
    queries are NEI claims in claims_train.jsonl), so a refusal here may be right; `summarise_unlabelled` reports it."""
    from evals.evaluate import load_split

    data = load_split(folder, split)
    return [Question(q, claim_question(text), True, {d: [] for d in data.qrels[q]}, tuple(data.qrels[q]))
            for q, text in data.queries.items()]  # fmt: skip


def as_typed(question: str) -> str:
    """The claim as a user might paste it, a plain statement: "Is it true that X?" -> "X." (no claim check then)."""
    return question.removeprefix("Is it true that ").removesuffix("?") + "."


def evaluate_claims(args: ARGS, settings: Settings) -> dict[str, Any]:
    from assistant import build_assistant

    path = Path(args.file)
    claims = beir_claims(path, args.split) if path.is_dir() else load_claims(path)
    chosen = np.random.default_rng(args.seed).permutation(len(claims))[: args.limit] if args.limit else range(len(claims))
    models, claim_models, rankers, folds = fold_models(args) if args.folds else ([], [], [], np.zeros(len(claims), dtype=int))
    # The claims are asked of the collection named by --collection (and --chroma-path / --index-dir when given).
    store = {"collection": args.collection, "chroma_path": args.chroma_path, "index_dir": args.index_dir}
    assistant = build_assistant(with_options(settings, **{k: v for k, v in store.items() if v is not None}))
    committed, committed_claims, committed_quotes = assistant.evidence.model, assistant.evidence.claims, assistant.evidence.quotes
    rows = []
    for i in sorted(int(i) for i in chosen):
        assistant.evidence.model = models[folds[i]] if models else committed
        assistant.evidence.claims = claim_models[folds[i]] if claim_models else committed_claims
        assistant.evidence.quotes = rankers[folds[i]] if rankers else committed_quotes
        answer = assistant.ask(as_typed(claims[i].text) if args.as_typed else claims[i].text, mode="ask")
        rows.append(score_claim(claims[i], answer))
    overall = summarise_unlabelled(rows) if path.is_dir() else summarise(rows)
    return {"overall": overall, "cross_validated": bool(models), "claims": rows}


def _claims(args: ARGS, settings: Settings, out: TextIO) -> int:
    args.claims = args.file
    report = evaluate_claims(args, settings)
    if args.json:
        print(json.dumps(report), file=out)
    else:
        for key, value in report["overall"].items():
            print(f"{key}: {value}", file=out)
        print("cross-validated: " + ("yes" if report["cross_validated"] else "no (committed model)"), file=out)
    return 0


def register(kinds: Any) -> None:
    """Add `eval claims` to the `eval` subcommands."""
    c = kinds.add_parser("claims", help="SciFact claims through Assistant.ask: refusals, citations, rationale hits")
    c.add_argument("file", help="claims JSONL with rationales (SciFact claims_train.jsonl format), or a BEIR folder")
    c.add_argument("--split", default="test", help="with a BEIR folder: the qrels split whose queries are the claims")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.add_argument("--limit", type=int, help="a seeded random sample of N claims")
    c.add_argument("--as-typed", action="store_true", help='ask each claim as a plain statement, not "Is it true that ...?"')
    add_arguments(c, claims_required=False)
    c.set_defaults(func=_claims, folds=0)


__all__ = ["as_typed", "claim_question", "evaluate_claims", "register"]
