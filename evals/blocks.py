"""Results blocks in Markdown files: a run replaces its own block between two marker lines, or appends it."""

from __future__ import annotations

import re
from pathlib import Path


def write_block(path: Path, block: str, begin: str, end: str) -> None:
    """Replace the block between the `begin` and `end` markers (each on a line of its own) in the file, or append it."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    marked = re.compile(rf"^{re.escape(begin)}$.*?^{re.escape(end)}$", re.MULTILINE | re.DOTALL)
    if marked.search(text):
        text = marked.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
