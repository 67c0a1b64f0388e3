"""Sentence spans shared by chunking, evidence and citation checking (word tokens live in `assistant.text.words`)."""

from __future__ import annotations

import re

# llama-index's node parsers do record offsets (start_char_idx/end_char_idx), but not the ones needed here:
# SentenceSplitter packs sentences into token-sized chunks, so its offsets are chunk offsets, and
# SentenceWindowNodeParser splits with NLTK's punkt and finds each node again with str.find, building a Document and
# nodes per call. Evidence and citation checking split every abstract sentence and every answer claim per query, so a
# regex over the raw text gives the exact (start, end) spans directly.
_BOUNDARY = re.compile(r"""[.!?]+["'”’)\]]*\s+(?=["'“‘(\[]?[A-Z0-9])""")
_ABBREV = re.compile(
    r"(?:\b(?:e\.g|i\.e|et al|vs|cf|fig|figs|eq|eqs|sec|no|approx|resp|dr|mr|ms|prof|st|etc|al|inc|ca)\.|\b[A-Z]\.)$",
    re.IGNORECASE,
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in `text`, trimmed of surrounding whitespace."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if text[match.start()] == "." and _ABBREV.search(text, max(start, match.start() - 16), match.start() + 1):
            continue
        end = match.end()
        seg = text[start:end]
        if seg.strip():
            s = start + (len(seg) - len(seg.lstrip()))
            spans.append((s, start + len(seg.rstrip())))
        start = end
    tail = text[start:]
    if tail.strip():
        s = start + (len(tail) - len(tail.lstrip()))
        spans.append((s, start + len(tail.rstrip())))
    return spans
