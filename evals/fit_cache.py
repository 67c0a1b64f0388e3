"""What the evidence fit's caches are keyed on: the code and the settings that produce what they hold.

Retrieved records depend on the retrieval and index code (fusion, BM25 tokenisation), the rewriting of follow-ups
and the settings; feature tables on the code that computes the features and on the embedding model. Any change to
these makes a new key, so a refit never reuses what older code produced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from assistant import index, retrieval
from assistant.answering import rewrite
from assistant.config import Settings

RETRIEVAL_CODE = (retrieval, index, rewrite)  # packages count with every module in them


def digest(*parts: object) -> str:
    """A short hash of the parts' text."""
    return hashlib.sha1(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:12]


def code_digest(modules: Iterable[ModuleType]) -> str:
    """A short hash of the modules' source; a package stands for every module in its folder."""
    files: list[Path] = []
    for module in modules:
        path = Path(str(module.__file__))
        files.extend(sorted(path.parent.glob("*.py")) if path.name == "__init__.py" else [path])
    return hashlib.sha1(b"".join(f.read_bytes() for f in files)).hexdigest()[:12]


def records_key(tag: str, questions: object, settings: Settings, k: int) -> str:
    """The key of one question source's retrieved records."""
    return digest(tag, questions, settings.model_dump_json(), k, code_digest(RETRIEVAL_CODE))
