"""Check hand-labelled sample questions against the bundled sample corpus: python -m evals.data.check_sample_data [FILE ...]."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from assistant.text.sentences import sentence_spans
from ingest.loaders import load_path, sample_corpus_path

DEFAULT = Path(__file__).with_name("sample_questions.jsonl")
TYPES = ("lookup", "comparative", "subtopic", "unanswerable", "followup")


def _sentences() -> dict[str, set[str]]:
    """Each sample paper's title mapped to its abstract's sentences, split as the pipeline splits them."""
    papers = load_path(sample_corpus_path(), strict=True).papers
    return {p.title: {p.abstract[a:b] for a, b in sentence_spans(p.abstract)} for p in papers}


def check_question(q: dict[str, Any], corpus: dict[str, set[str]]) -> list[str]:
    """Problems with one question record; empty when it is consistent with the corpus."""
    where = f"{q.get('qid')}"
    problems = [f"{where}: unknown type {q.get('type')!r}"] if q.get("type") not in TYPES else []
    gold, evidence, closest = list(q.get("gold", [])), list(q.get("evidence", [])), [q["closest"]] if q.get("closest") else []
    for field, titles in (("gold", gold), ("acceptable", q.get("acceptable", [])), ("closest", closest)):
        problems += [f"{where}: {field} title not in the corpus: {t!r}" for t in titles if t not in corpus]
    for item in evidence:
        title, sentence = item.get("title"), item.get("sentence")
        if title not in corpus:
            problems.append(f"{where}: evidence title not in the corpus: {title!r}")
        elif sentence not in corpus[title]:
            problems.append(f"{where}: evidence is not a sentence of {title[:50]!r}: {str(sentence)[:60]!r}")
        elif title not in gold:
            problems.append(f"{where}: evidence from a paper not in gold: {title[:50]!r}")
    if q.get("type") == "unanswerable":
        problems += [f"{where}: unanswerable question has gold or evidence"] if gold or evidence else []
    else:
        missing = set(gold) - {e.get("title") for e in evidence}
        problems += [f"{where}: gold paper without evidence: {t[:50]!r}" for t in sorted(missing)]
        problems += [f"{where}: answerable question without answer_points"] if not q.get("answer_points") else []
    if q.get("type") == "followup" and not q.get("history"):
        problems.append(f"{where}: followup without history")
    return problems


def load(path: Path) -> list[dict[str, Any]]:
    """The question records, one JSON object a line; exits with the file and line of a malformed one."""
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            obj = json.loads(line) if line.strip() else {}
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            sys.exit(f"{path}:{i}: not a JSON object")
        out += [obj] if obj else []
    return out


def check_file(path: Path, corpus: dict[str, set[str]]) -> bool:
    """Print one line per problem in one file and its counts per type; True when it has no problems."""
    questions = load(path)
    problems = [f"duplicate qid {qid!r}" for qid, n in Counter(q.get("qid") for q in questions).items() if n > 1]
    for q in questions:
        problems += check_question(q, corpus)
    for line in problems:
        print(f"{path}: {line}", file=sys.stderr)
    counts = Counter(q.get("type") for q in questions)
    print(f"{path.name}: {len(questions)} questions: " + ", ".join(f"{t} {counts[t]}" for t in TYPES))
    return not problems


def main(argv: list[str]) -> int:
    corpus = _sentences()
    results = [check_file(Path(arg), corpus) for arg in argv or [str(DEFAULT)]]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
