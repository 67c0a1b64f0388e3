"""Numbered citation markers in answers: parsing, and removing the numbers no source has."""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

MAX_RANGE = 100  # a wider range stands for its two ends in `numbers`; it is never materialised
_BIG = 10**18  # "[99999...]" of any length is one number past every source (int() refuses over 4,300 digits)
_DASH = "-–—‐‑−"  # hyphen, en dash, em dash, the Unicode hyphens models emit, and the minus sign
_NUM = r"[-−]?\d+"  # any size, any script's digits, a sign so "[-1]" is parsed (and dropped) rather than left standing
_ITEM = rf"{_NUM}(?:[ \t]*[{_DASH}][ \t]*{_NUM})?"
# Atomic groups keep adversarial inputs (long runs of "1,1,1,...") linear.
_MARKER = re.compile(rf"\[[ \t]*(?>{_ITEM}(?:[ \t]*[,;][ \t]*{_ITEM})*)[ \t]*\](?!\()")
_RANGE = re.compile(rf"({_NUM})[ \t]*[{_DASH}][ \t]*({_NUM})")
# Deleting "[9]" from "[1 [9]]" would leave the new marker "[1]"; a thin space (never part of a marker) prevents that.
_SEPARATOR = "\u2009"
_JOIN_LEFT = set(f"[ \t,;{_DASH}")
_JOIN_RIGHT = set(f"] \t,;{_DASH}")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})([^\n]*)$", re.MULTILINE)
_BACKTICKS = re.compile(r"`+")
_SEP = re.compile(r"[,;]")


@dataclass(frozen=True)
class Marker:
    """One citation marker: text[start:end] is e.g. "[1, 3-5]".

    `spans` are its items as (low, high) pairs, of any size; `numbers` lists them, a range wider than MAX_RANGE
    by its two ends only, so that "[1-999999999999]" costs two numbers.
    """

    start: int
    end: int
    numbers: tuple[int, ...]
    spans: tuple[tuple[int, int], ...] = ()

    def within(self, top: int) -> tuple[tuple[int, int], ...]:
        """Its spans clipped to 1..top (empty ones left out)."""
        return tuple((max(lo, 1), min(hi, top)) for lo, hi in self.spans if max(lo, 1) <= min(hi, top))

    def outside(self, top: int) -> set[int]:
        """Its numbers outside 1..top, as `numbers` lists them."""
        return {n for n in self.numbers if not 1 <= n <= top}


def code_regions(text: str) -> list[tuple[int, int]]:
    """Sorted, disjoint spans of fenced code blocks and inline code spans."""
    regions: list[tuple[int, int]] = []
    fence: tuple[str, int, int] | None = None  # (fence char, length, block start)
    for m in _FENCE.finditer(text):  # only fence-like lines, so long texts cost one regex scan
        mark, rest = m.group(1), m.group(2)
        if fence is None:
            fence = (mark[0], len(mark), m.start())
        elif mark[0] == fence[0] and len(mark) >= fence[1] and not rest.strip():
            regions.append((fence[2], m.end()))
            fence = None
    if fence is not None:  # an unclosed fence runs to the end, as in CommonMark
        regions.append((fence[2], len(text)))
    starts = [r[0] for r in regions]

    def fenced(pos: int) -> bool:
        i = bisect.bisect_right(starts, pos) - 1
        return i >= 0 and regions[i][0] <= pos < regions[i][1]

    runs = [(m.start(), m.end()) for m in _BACKTICKS.finditer(text) if not (regions and fenced(m.start()))]
    # An inline span closes at the next run of the same length; look that up in O(1) instead of rescanning.
    following: list[int | None] = [None] * len(runs)
    last: dict[int, int] = {}
    for i in range(len(runs) - 1, -1, -1):
        length = runs[i][1] - runs[i][0]
        following[i] = last.get(length)
        last[length] = i
    inline: list[tuple[int, int]] = []
    i = 0
    while i < len(runs):
        j = following[i]
        if j is None:
            i += 1
        else:
            inline.append((runs[i][0], runs[j][1]))
            i = j + 1
    merged: list[tuple[int, int]] = []
    for s, e in sorted(regions + inline):  # an inline span may straddle a fence; merge so lookups stay simple
        if merged and s < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def _int(text: str) -> int:
    """A marker number of any length and script; past _BIG it is _BIG, which no source count reaches."""
    text = text.replace("−", "-")
    digits = text.lstrip("-")
    value = int(digits) if len(digits) <= 18 else _BIG
    return -value if text.startswith("-") else value


def _spans(body: str) -> tuple[tuple[int, int], ...]:
    """The items of a marker body like "1, 3-5" as (low, high) pairs; a reversed range is read low to high."""
    out: list[tuple[int, int]] = []
    for item in _SEP.split(body):
        r = _RANGE.search(item)
        if r:
            lo, hi = sorted((_int(r.group(1)), _int(r.group(2))))
            out.append((lo, hi))
        else:
            n = _int(item.strip())
            out.append((n, n))
    return tuple(dict.fromkeys(out))


def _listed(spans: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    """The numbers of the spans, unique, a span wider than MAX_RANGE by its ends."""
    out: list[int] = []
    for lo, hi in spans:
        out.extend(range(lo, hi + 1) if hi - lo < MAX_RANGE else (lo, hi))
    return tuple(dict.fromkeys(out))


def parse_markers(text: str) -> list[Marker]:
    """Citation markers in reading order, ignoring code spans, code blocks and link texts."""
    regions = code_regions(text)
    starts = [r[0] for r in regions]
    markers: list[Marker] = []
    for m in _MARKER.finditer(text):
        i = bisect.bisect_right(starts, m.start()) - 1
        if i >= 0 and m.start() < regions[i][1]:
            continue
        if m.start() and text[m.start() - 1] == "]" and not (markers and markers[-1].end == m.start()):
            continue  # the label of a reference-style link, "[text][1]"
        spans = _spans(m.group()[1:-1])
        markers.append(Marker(m.start(), m.end(), _listed(spans), spans))
    return markers


def cited_numbers(text: str) -> list[int]:
    """Cited source numbers, unique, in order of first appearance."""
    return list(dict.fromkeys(n for m in parse_markers(text) for n in m.numbers))


def _remove_markers(text: str, markers: Sequence[Marker], top: int) -> str:
    """Rewrite markers to their numbers in 1..top; an emptied marker goes with one preceding space."""
    kept = [m.within(top) for m in markers]
    # Adjacent markers ("[0][1]") form a run; the space before a run goes only when the whole run does.
    run_emptied = [not k for k in kept]
    for i in range(len(markers) - 2, -1, -1):
        if markers[i].end == markers[i + 1].start:
            run_emptied[i] = run_emptied[i] and run_emptied[i + 1]
    parts: list[str] = []
    pos = 0
    blank_line = True  # whether the output's current line holds only spaces so far
    for i, m in enumerate(markers):
        if kept[i] == m.spans:
            continue  # untouched markers keep their original spelling
        start = m.start
        opens_run = i == 0 or markers[i - 1].end != m.start
        if opens_run and run_emptied[i] and start > pos and text[start - 1] == " ":
            start -= 1
        chunk = text[pos:start]
        parts.append(chunk)
        nl = chunk.rfind("\n")
        blank_line = not chunk[nl + 1 :].strip(" ") if nl >= 0 else blank_line and not chunk.strip(" ")
        if kept[i]:
            parts.append("[" + ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in kept[i]) + "]")
            blank_line = False
        elif _would_join(parts, text[m.end : m.end + 1], blank_line):
            parts.append(_SEPARATOR)
            blank_line = False
        pos = m.end
    parts.append(text[pos:])
    return "".join(parts)


def _would_join(parts: list[str], right: str, blank_line: bool) -> bool:
    """Whether deleting a marker here would glue its neighbours into a new marker, code span or fence."""
    left = next((p[-1] for p in reversed(parts) if p), "")
    return bool(
        (left and right and (left in _JOIN_LEFT or left.isdecimal()) and (right in _JOIN_RIGHT or right.isdecimal()))
        or (right and right in "`~" and (left in ("`", "~") or blank_line))
    )


def drop_invalid(text: str, n_sources: int) -> tuple[str, tuple[int, ...]]:
    """Remove numbers outside 1..n_sources from markers; return the new text and the dropped numbers."""
    markers = parse_markers(text)
    dropped = {n for m in markers for n in m.outside(n_sources)}
    if not dropped:
        return text, ()
    return _remove_markers(text, markers, n_sources), tuple(sorted(dropped))


def strip_markers(text: str) -> str:
    """The text without citation markers (and the space before each)."""
    return _remove_markers(text, parse_markers(text), 0)
