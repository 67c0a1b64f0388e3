"""Removing answer sentences that repeat the system prompt (a source may ask the model to reveal it)."""

from __future__ import annotations

import re

from assistant.answering.prompts import SYSTEM
from assistant.answering.refusals import REFUSAL
from assistant.text.sentences import sentence_spans
from assistant.text.words import words

_ECHO_WORDS = 6  # this many consecutive words of the system prompt in one sentence count as repeating it
_SYSTEM_WORDS = words(SYSTEM.replace(REFUSAL, " | "))  # the refusal it prescribes is a legitimate answer
_SYSTEM_GRAMS = frozenset(tuple(_SYSTEM_WORDS[i : i + _ECHO_WORDS]) for i in range(len(_SYSTEM_WORDS) - _ECHO_WORDS + 1))
_SYSTEM_JOINED = f" {' '.join(_SYSTEM_WORDS)} "
_LETTER = re.compile(r"[^\W\d_]")


def _echoes_system(sentence: str) -> bool:
    """Whether a sentence repeats the system prompt: six of its words in a row, or all of a shorter rule."""
    w = words(sentence)
    if len(w) >= 4 and f" {' '.join(w)} " in _SYSTEM_JOINED:
        return True
    return any(tuple(w[i : i + _ECHO_WORDS]) in _SYSTEM_GRAMS for i in range(len(w) - _ECHO_WORDS + 1))


def strip_system_echo(text: str) -> tuple[str, int]:
    """The answer without sentences that repeat the system prompt, and how many went."""
    removed = 0
    lines: list[str] = []
    for line in text.split("\n"):
        kept: list[str] = []
        pos = 0
        for start, end in sentence_spans(line):
            if _echoes_system(line[start:end]):
                kept.append(line[pos:start])
                pos = end
                removed += 1
        if pos == 0:
            lines.append(line)
        elif _LETTER.search(rest := re.sub(r"(?<=\S)[ \t]{2,}", " ", "".join(kept) + line[pos:]).rstrip()):
            lines.append(rest)  # a line left with only its list number ("2.") goes too
    return "\n".join(lines), removed
