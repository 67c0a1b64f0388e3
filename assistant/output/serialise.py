"""The one JSON form of answers and citations, shared by `--json`, feedback lines and exports; it never holds a key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistant.models import Answer, Citation


def citation_dicts(citations: Sequence[Citation]) -> list[dict[str, Any]]:
    """Citations as plain JSON: number, paper, title and the quoted sentences with their spans."""
    return [
        {
            "n": c.n,
            "paper_id": c.paper_id,
            "title": c.title,
            "quotes": [{"text": q.text, "start": q.start, "end": q.end} for q in c.quotes],
        }
        for c in citations
    ]


def answer_json(answer: Answer) -> dict[str, Any]:
    """An answer as plain JSON: the `--json` output of `python -m assistant ask`."""
    return {
        "question": answer.question,
        "standalone_question": answer.standalone_question,
        "answer": answer.text,
        "mode": answer.mode,
        "refused": answer.refused,
        "extractive": answer.extractive,
        "incomplete": answer.incomplete,
        "error": answer.error,
        "citations": citation_dicts(answer.citations),
        "papers": [e.title for e in answer.evidence],
        "unsupported": list(answer.unsupported),
        "dropped_citations": list(answer.dropped_citations),
        "coverage": answer.coverage,
        "left_out": list(answer.left_out),
        "table": list(answer.table),
        "fallback": (
            {"note": answer.fallback.note, "text": answer.fallback.text, "citations": citation_dicts(answer.fallback.citations)}
            if answer.fallback
            else None
        ),
        "usage": {"prompt_tokens": answer.usage.prompt_tokens, "completion_tokens": answer.usage.completion_tokens},
        "timings": {
            "retrieval": answer.timings.retrieval,
            "first_token": answer.timings.first_token,
            "total": answer.timings.total,
        },
    }
