"""An answer split into claims: its sentences with the source numbers their markers cite."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from assistant.answering.markers import code_regions, parse_markers, strip_markers
from assistant.text.sentences import sentence_spans

_SENTENCE_CUT = re.compile(r"(?<=[a-z]{3})[.!?]\s+(?=[A-Z])")  # a plain sentence end, not "e.g. " or "Fig. 3"
_SPACE_CUT = re.compile(r"\s+(?=\S)")
_BLOCK = 1000
_LINE = re.compile(r"[^\n]*")
_BULLET = re.compile(r"^[ \t]*(?:>[ \t]*)*(?:[-*+•][ \t]+|\d{1,3}[.)][ \t]+)?")
_EMPHASIS = re.compile(r"\*\*|__|(?<!\w)[*_](?=\S)|(?<=\S)[*_](?!\w)")
_BOLD_LINE = re.compile(r"^(\*\*|__)[^\n]*\1[ \t]*:?$")
_LETTER = re.compile(r"[^\W\d_]")
_SPACES = re.compile(r"[ \t]+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")


@dataclass(frozen=True)
class Claim:
    """One sentence of an answer with the source numbers its markers cite; text == answer[start:end]."""

    text: str
    start: int
    end: int
    numbers: tuple[int, ...]


def plain_text(text: str) -> str:
    """Claim text as prose: no markers, no markdown emphasis, tidy spaces."""
    out = _EMPHASIS.sub("", strip_markers(text))
    return _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", out)).strip()


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    """sentence_spans, fed blocks of about _BLOCK characters cut at a sentence end, so a huge line stays linear."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while pos < len(text):
        end = len(text)
        if end - pos > _BLOCK:
            # sentence_spans rescans from the last boundary for each abbreviation, quadratic on a long run of them.
            lo, hi = pos + _BLOCK // 2, pos + _BLOCK
            cuts = [m.end() for m in _SENTENCE_CUT.finditer(text, lo, hi)] or [m.end() for m in _SPACE_CUT.finditer(text, lo, hi)]
            end = (cuts or [pos + _BLOCK])[-1]
        spans.extend((s + pos, e + pos) for s, e in sentence_spans(text[pos:end]))
        pos = end
    return spans


def _is_heading(masked_line: str) -> bool:
    """Markdown headings and whole-line bold titles such as "**Title** [1]" (markers already blanked)."""
    bare = masked_line.strip()
    return bare.startswith("#") or bool(_BOLD_LINE.match(bare))


def split_claims(text: str) -> list[Claim]:
    """The answer's sentences with their citation numbers, skipping headings, code, lead-ins ending in ":" and letterless lines.

    A marker right after a sentence's final period ("X. [1]") belongs to that sentence, as does "X [1].";
    a marker alone on its own line is not attached to anything.
    """
    markers = parse_markers(text)
    code = code_regions(text)
    code_starts = [r[0] for r in code]
    marker_starts = [m.start for m in markers]
    claims: list[Claim] = []
    for line in _LINE.finditer(text):
        i = bisect.bisect_right(code_starts, line.start()) - 1
        if (i >= 0 and line.start() < code[i][1] and line.end() <= code[i][1]) or not _LETTER.search(line.group()):
            continue
        bullet = _BULLET.match(line.group())
        body_start = line.start() + (bullet.end() if bullet else 0)
        lo, hi = bisect.bisect_left(marker_starts, body_start), bisect.bisect_left(marker_starts, line.end())
        own = [m for m in markers[lo:hi] if m.end <= line.end()]
        # Blank the markers so "X. [1] Y." splits after "X." and the marker can be handed back to it.
        chars = list(text[body_start : line.end()])
        for m in own:
            chars[m.start - body_start : m.end - body_start] = " " * (m.end - m.start)
        masked = "".join(chars)
        if not _LETTER.search(masked) or _is_heading(masked):
            continue
        spans = [[s + body_start, e + body_start] for s, e in _sentence_spans(masked)]
        numbers: list[list[int]] = [[] for _ in spans]
        span_starts = [s for s, _ in spans]
        for m in own:
            # A marker belongs to the sentence it sits in or follows; one opening the line, to the first.
            k = max(0, bisect.bisect_right(span_starts, m.start) - 1)
            numbers[k].extend(m.numbers)
            spans[k][0], spans[k][1] = min(spans[k][0], m.start), max(spans[k][1], m.end)
        for (s, e), nums in zip(spans, numbers, strict=True):
            bare = masked[s - body_start : e - body_start].rstrip()
            if _LETTER.search(bare) and not bare.endswith(":"):
                claims.append(Claim(text[s:e], s, e, tuple(dict.fromkeys(nums))))
    return claims
