"""The one name extractor: the specific things a question is about (DSPy, GPT-4, SWE-bench, Tulu)."""

from __future__ import annotations

import re
import unicodedata

# A word with a capital or digit after its first letter (DSPy, GPT-4, SWE-bench), or a capitalised word that does not
# start a sentence (Tulu, Adam, Think-and-Execute). Sentence starts are skipped: "Which", "Compare" are no names.
_MIXED = re.compile(r"\b([A-Za-z][a-z]*[A-Z0-9][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*)\b")
_CAPITAL = re.compile(r"(?<![.?!:]\s)(?<!^)\b([A-Z][a-z]+(?:-[A-Za-z0-9]+)*)\b")
# A capitalised compound with a capital after a hyphen (Effi-Code, Think-and-Execute) is a name even where a sentence
# starts: no question word is spelled that way.
_COMPOUND = re.compile(r"\b([A-Z][a-z]+(?:-[A-Za-z0-9]+)*-[A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*)\b")


def fold(text: str) -> str:
    """Accents dropped (Tülu matches Tulu)."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def names(text: str) -> list[str]:
    """The names `text` mentions, in reading order, each once; a part of a longer name ("Math" in "DART-Math", "LLM"
    in "Duo-LLM") is not a name of its own."""
    text = text.strip()
    spans = {(m.start(1), m.end(1), m.group(1)) for pattern in (_MIXED, _CAPITAL, _COMPOUND) for m in pattern.finditer(text)}
    kept: list[tuple[int, int, str]] = []
    for start, end, name in sorted(spans, key=lambda s: (s[0], -s[1])):
        if not any(s <= start and end <= e for s, e, _ in kept):
            kept.append((start, end, name))
    return list(dict.fromkeys(name for _, _, name in kept))
