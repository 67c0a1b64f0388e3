"""Answer ratings appended to a JSONL file, one line per rating."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.models import Citation
from assistant.output.serialise import citation_dicts

# Streamlit runs every browser session in its own thread; one lock keeps lines whole.
_LOCK = threading.Lock()


def append_feedback(path: Path, question: str, answer: str, citations: Sequence[Citation], rating: str | int) -> dict[str, Any]:
    """Append one {time, question, answer, citations, rating} line to `path` and return it."""
    record = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "question": question,
        "answer": answer,
        "citations": citation_dicts(citations),
        "rating": rating,
    }
    line = json.dumps(record, ensure_ascii=False) + "\n"
    path = Path(path)
    with _LOCK:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One write of the whole line in append mode, so concurrent writers never interleave inside a line.
        with path.open("a", encoding="utf-8") as fh:
            fh.write(line)
    return record
