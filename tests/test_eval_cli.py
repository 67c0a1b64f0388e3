"""`eval retrieval` on a tiny BEIR fixture, and a `bench --quick` smoke run on it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.config import Settings
from evals.evaluate import collection_name, load_split
from tests.conftest import make_settings

TINY = Path(__file__).parent / "data" / "beir-tiny"
ROWS = {"pipeline", "dense", "bm25", "llamaindex"}
METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("beir-tiny-store")


def run(argv: list[str], settings: Settings) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, settings=settings, out=out)
    return code, out.getvalue()


def test_load_split_reads_qrels() -> None:
    split = load_split(TINY, "test")
    assert len(split.queries) == 6
    assert all(split.qrels[q] for q in split.queries)
    assert list(load_split(TINY, "test", limit=2).queries) == list(split.queries)[:2]
    assert collection_name(TINY) == "beir-tiny"


@pytest.mark.slow
def test_eval_retrieval_four_rows_json(tiny_store: Path) -> None:
    settings = make_settings(tiny_store)
    code, text = run(["eval", "retrieval", "--beir", str(TINY), "--json"], settings)
    assert code == 0
    rows = json.loads(text)
    assert {r["row"] for r in rows} == ROWS
    for r in rows:
        assert r["queries"] == 6 and r["split"] == "test"
        assert all(0.0 <= r[m] <= 1.0 for m in METRICS)
        # 30 documents: every relevant one is within the first 100 papers of every system that ranks them all
        # (BM25 leaves out papers sharing no term with the query).
        assert r["recall@100"] == 1.0 or r["row"] == "bm25"
    by_row = {r["row"]: r for r in rows}
    assert by_row["pipeline"]["ndcg@10"] > 0.5
    # Run again as text: the corpus is already there, so nothing is ingested and the table has the four systems.
    code, text = run(["eval", "retrieval", "--beir", str(TINY), "--limit", "2"], settings)
    assert code == 0
    assert "ingested" not in text
    assert "2 queries" in text and "llama-index" in text and "BM25 only" in text


def test_eval_retrieval_rejects_missing_split(tmp_path: Path) -> None:
    code, _ = run(["eval", "retrieval", "--beir", str(TINY), "--split", "dev"], make_settings(tmp_path))
    assert code == 2  # bad input, as the CLI reports it


def test_bench_needs_a_beir_folder_from_its_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No default outside the repository: a missing or wrong --beir is one clear line, before any model loads."""
    settings = make_settings(tmp_path)
    assert run(["bench", "--json"], settings)[0] == 2  # bad input, as the CLI reports it
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: bench needs --beir DIR") and "--skip beir" in err and "\n" not in err
    assert run(["bench", "--beir", str(tmp_path)], settings)[0] == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path}: not a BEIR folder (no corpus.jsonl)"


def test_bench_refuses_a_record_of_an_ingest_that_wrote_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A no-op re-run's record has no throughput to compare; said at once, not after twenty minutes of measuring."""
    record = tmp_path / "ingest.json"
    record.write_text(json.dumps({"chunks": 0, "seconds": 3.6, "chunks_per_second": 0.0}))
    argv = ["bench", "--quick", "--beir", str(TINY), "--reuse", str(tmp_path), "--ingest-record", str(record)]
    assert run(argv, make_settings(tmp_path))[0] == 2
    assert (
        capsys.readouterr().err.strip() == f"error: {record}: records an ingest that wrote no chunks (a re-run?); "
        "pass the record of the full ingest"
    )
    record.write_text("not json")
    assert run(argv, make_settings(tmp_path))[0] == 2
    assert capsys.readouterr().err.startswith(f"error: {record}: not a `python -m ingest --json` record")


@pytest.mark.slow
def test_bench_quick_smoke(tiny_store: Path, tmp_path: Path) -> None:
    settings = make_settings(tiny_store)
    if not (tiny_store / "chroma").exists():
        assert run(["eval", "retrieval", "--beir", str(TINY), "--rows", "bm25"], settings)[0] == 0
    doc = tmp_path / "bench.md"
    argv = [
        "bench",
        "--quick",
        "--json",
        "--corpus",
        str(TINY / "corpus.jsonl"),
        "--beir",
        str(TINY),
        "--reuse",
        str(tiny_store),
        "--queries",
        "20",
        "--load-queries",
        "40",
        "--threads",
        "4",
        "--skip",
        "app",
        "--write",
        str(doc),
    ]
    code, text = run(argv, settings)
    assert code == 0
    r = json.loads(text)
    assert r["sample_ingest"]["chunks"] > 0 and r["sample_ingest"]["ratio"] > 0
    assert r["sample_ingest"]["reingest"]["written_chunks"] == 0
    assert r["beir_ingest"]["reingest"]["unchanged"] == 30
    assert r["sample_latency"]["ours"]["queries"] == 20 and r["beir_latency"]["llamaindex"]["queries"] == 20
    assert r["load"]["errors"] == 0 and r["load"]["queries"] == 40
    assert r["cli_cold_start"]["ok"], r["cli_cold_start"]
    assert r["machine"]["cores"] >= 1
    block = doc.read_text()
    assert "load run" in block and "re-ingest" in block and "<!-- bench:end -->" in block


@pytest.mark.slow
def test_eval_claims_reports_answer_level_figures(tiny_store: Path) -> None:
    from evals.evaluate import ensure_ingested

    settings = make_settings(tiny_store)
    ensure_ingested(settings.model_copy(update={"collection": collection_name(TINY)}), TINY)
    # Settings name another collection: --collection decides which one the claims are asked of.
    code, text = run(["eval", "claims", str(TINY / "claims.jsonl"), "--collection", collection_name(TINY), "--json"], settings)
    assert code == 0
    report = json.loads(text)
    overall = report["overall"]
    assert (overall["claims"], overall["evidence_claims"], overall["nei_claims"]) == (5, 3, 2)
    assert not report["cross_validated"]
    rows = {r["id"]: r for r in report["claims"]}
    assert rows["x1"]["refused"] and rows["x2"]["refused"], "claims no abstract here addresses are refused"
    assert overall["nei_refusal_rate"] == 1.0
    answered = [r for r in report["claims"] if r["answerable"] and not r["refused"]]
    assert answered and all(r["doc_hit"] and r["precision"] > 0 for r in answered), answered
    assert overall["doc_recall"] == pytest.approx(len(answered) / 3, abs=1e-3)


def test_a_claim_as_typed_is_a_plain_statement_and_no_claim_check() -> None:
    from assistant.answering.answerability import is_claim_check
    from assistant.answering.asking import asks_specific
    from evals.claims import as_typed
    from evals.fit_evidence import claim_question

    typed = as_typed(claim_question("1 in 5 million in UK have abnormal PrP positivity."))
    assert typed == "1 in 5 million in UK have abnormal PrP positivity."
    assert not is_claim_check(typed) and not asks_specific(typed)  # the evidence bar alone decides it


def test_eval_claims_names_the_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "claims.jsonl"
    bad.write_text('{"id": "1", "claim": "x", "evidence": {}, "cited_doc_ids": []}\n{"id": "2"}\n', encoding="utf-8")
    with pytest.raises(SystemExit, match=r"claims\.jsonl:2: not a SciFact claim"):
        run(["eval", "claims", str(bad), "--json"], make_settings(tmp_path))


def test_eval_questions_names_the_bad_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "questions.jsonl"
    turn = {"role": "user", "content": "What is B4?"}
    bad.write_text(json.dumps({"qid": "q1", "question": "And its code?", "history": [turn]}) + "\n", encoding="utf-8")
    code, _ = run(["eval", "questions", str(bad), "--json"], make_settings(tmp_path))
    assert code == 2
    assert f"{bad}:1: field 'history' must be a list of strings" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_claims_takes_a_beir_split_as_unlabelled_claims(tiny_store: Path) -> None:
    from evals.evaluate import ensure_ingested

    settings = make_settings(tiny_store)
    ensure_ingested(settings.model_copy(update={"collection": collection_name(TINY)}), TINY)
    argv = ["eval", "claims", str(TINY), "--split", "test", "--collection", collection_name(TINY), "--json"]
    code, text = run(argv, settings)
    assert code == 0
    report = json.loads(text)
    overall = report["overall"]
    # BEIR qrels also list NEI claims' on-topic abstracts: a refusal may be right, so no false-refusal figure.
    assert overall["claims"] == 6 and overall["labelled"] is False and "false_refusals" not in overall
    assert overall["refused"] == pytest.approx(sum(r["refused"] for r in report["claims"]) / 6, abs=1e-3)
    assert overall["doc_recall"] > 0.0 and overall["citation_precision"] == 1.0  # what it cites is evidence
