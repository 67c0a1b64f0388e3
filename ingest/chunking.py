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


# The title's share of every embedded and indexed chunk: MiniLM reads 256 word pieces, so a title of thousands of
# words would push the abstract out of the window and bury the chunk under BM25's length normalisation.
TITLE_TOKENS = 48
TITLE_CHARS = 200  # titles up to this long (about 50 tokens at most) are used whole, without loading a tokenizer


def title_is_cut(title: str) -> bool:
    """Whether `embedding_text` shortens this title (decided on characters, so no tokenizer is needed)."""
    return len(title) > TITLE_CHARS


def bounded_title(title: str, count: Counter | None = None) -> str:
    """The title cut at a word boundary to at most TITLE_CHARS characters and TITLE_TOKENS tokens."""
    if not title_is_cut(title):
        return title
    count = count or token_counter()
    words = title[: TITLE_CHARS + 1].split()
    if len(words) > 1 and not title[TITLE_CHARS:].startswith((" ", "\n")):
        words = words[:-1]  # the character cut fell inside the last word
    while len(words) > 1 and count(" ".join(words)) > TITLE_TOKENS:
        words = words[:-1]
    cut = " ".join(words)
    return cut if count(cut) <= TITLE_TOKENS else cut[:TITLE_TOKENS]  # one word longer than the budget


def embedding_text(title: str, chunk_text: str, count: Counter | None = None) -> str:
    """What is embedded and indexed for a chunk: its paper's title, bounded, gives it context."""
    return f"{bounded_title(title, count)}\n{chunk_text}"


def chunk_papers(papers: Sequence[Paper], max_tokens: int, overlap: int) -> dict[str, list[Chunk]]:
    """Chunks for many papers keyed by paper id."""
    count = token_counter()
    return {p.id: chunk_paper(p, max_tokens, overlap, count) for p in papers}
