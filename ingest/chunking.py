"""Sentence-aware chunking sized in tiktoken tokens, keeping every sentence's offsets."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from assistant.models import Chunk, Paper, Span
from assistant.text.sentences import sentence_spans

Counter = Callable[[str], int]


@lru_cache(maxsize=1)
def token_counter() -> Counter:
    """Token counter backed by the tiktoken files llama-index-core ships (works offline)."""
    from llama_index.core.utils import get_tokenizer

    encode = get_tokenizer()
    return lambda text: len(encode(text))


def _split_long(text: str, start: int, end: int, limit: int, count: Counter) -> list[Span]:
    """Cut one over-long sentence at word boundaries into pieces of at most `limit` tokens.

    A piece is measured as the text it covers (tokens of separately counted words need not add up
    to the tokens of the joined text); a single word longer than `limit` becomes a piece of its own.
    """
    pieces: list[Span] = []
    words = [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", text[start:end])]
    piece_start, last_end = words[0]
    for w_start, w_end in words[1:]:
        if count(text[piece_start:w_end]) > limit:
            pieces.append((piece_start, last_end))
            piece_start = w_start
        last_end = w_end
    pieces.append((piece_start, last_end))
    return pieces


def chunk_spans(text: str, max_tokens: int, overlap: int, count: Counter | None = None) -> list[tuple[Span, ...]]:
    """Group sentence spans of `text` into chunks of at most `max_tokens` tokens.

    Budgets are checked on the text a chunk covers, spaces between sentences included, so
    `count(chunk text) <= max_tokens` holds unless one word alone is longer than the budget.
    """
    count = count or token_counter()
    units: list[Span] = []
    for start, end in sentence_spans(text):
        if count(text[start:end]) > max_tokens:
            units.extend(_split_long(text, start, end, max_tokens, count))
        else:
            units.append((start, end))
    chunks: list[tuple[Span, ...]] = []
    i = 0
    while i < len(units):
        j = i + 1
        while j < len(units) and count(text[units[i][0] : units[j][1]]) <= max_tokens:
            j += 1
        chunks.append(tuple(units[i:j]))
        if j >= len(units):
            break
        # Carry trailing sentences that fit the overlap budget, always moving forward.
        back = j
        while back - 1 > i and count(text[units[back - 1][0] : units[j - 1][1]]) <= overlap:
            back -= 1
        i = back
    return chunks


def chunk_paper(paper: Paper, max_tokens: int, overlap: int, count: Counter | None = None) -> list[Chunk]:
    """Chunks of one paper's abstract; ids are `{paper_id}:{n}`."""
    out: list[Chunk] = []
    for n, spans in enumerate(chunk_spans(paper.abstract, max_tokens, overlap, count)):
        text = paper.abstract[spans[0][0] : spans[-1][1]]
        out.append(Chunk(paper_id=paper.id, n=n, text=text, spans=spans))
    return out


def embedding_text(title: str, chunk_text: str) -> str:
    """What is embedded and indexed for a chunk: its paper's title gives it context."""
    return f"{title}\n{chunk_text}"


def chunk_papers(papers: Sequence[Paper], max_tokens: int, overlap: int) -> dict[str, list[Chunk]]:
    """Chunks for many papers keyed by paper id."""
    count = token_counter()
    return {p.id: chunk_paper(p, max_tokens, overlap, count) for p in papers}
