"""Numbered citation markers in answers: parsing, repair, claim splitting and support checking."""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.index.embed import Embedder
from assistant.models import Citation, Evidence, Sentence
from assistant.text.sentences import content_words, sentence_spans, words

MAX_RANGE = 50  # a range wider than this is a typo or not a citation at all
MAX_QUOTES = 3
_NUM = r"\d{1,4}"
_DASH = "-–—‐‑"  # hyphen, en dash, em dash and the Unicode hyphens models emit
_ITEM = rf"{_NUM}(?:[ \t]*[{_DASH}][ \t]*{_NUM})?"
# Atomic groups keep adversarial inputs (long runs of "1,1,1,...") linear.
_MARKER = re.compile(rf"\[[ \t]*(?>{_ITEM}(?:[ \t]*[,;][ \t]*{_ITEM})*)[ \t]*\](?!\()")
_RANGE = re.compile(rf"({_NUM})[ \t]*[{_DASH}][ \t]*({_NUM})")
# Deleting "[9]" from "[1 [9]]" would leave the new marker "[1]"; a thin space (never part of a marker) prevents that.
_SEPARATOR = "\u2009"
_JOIN_LEFT = set(f"[0123456789 \t,;{_DASH}")
_JOIN_RIGHT = set(f"]0123456789 \t,;{_DASH}")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})([^\n]*)$", re.MULTILINE)
_BACKTICKS = re.compile(r"`+")
_SEP = re.compile(r"[,;]")
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
_NEGATION = (
    r"(?:do|does|did|could|can)(?:n't| not)|cannot|no information"
    r"|not (?:mention|cover|discuss|address|report|say|provide|contain)"
)
_SOURCES = r"collection|corpus|papers?|sources?|abstracts?|evidence|context|documents?|provided"
# A sentence saying the sources lack something is a refusal, not a claim that needs a citation.
_REFUSAL = re.compile(
    rf"^(?:i(?:'m| am)? (?:sorry|cannot|can't|could not|couldn't|do not|don't)|sorry\b|there is no|none of the"
    rf"|no (?:{_SOURCES})\b)"
    rf"|\b(?:the|these|those|provided|retrieved|given|available|any)\s+(?:{_SOURCES})\b.{{0,200}}?\b{_NEGATION}",
    re.IGNORECASE,
)
_VERBATIM_MIN_WORDS = 5  # shorter quotes match by chance too easily
_NEGATIONS = frozenset({"not", "no", "never", "cannot", "without", "nor", "neither"})
_LEXICAL_SCALE = 1.8


@dataclass(frozen=True)
class Marker:
    """One citation marker: text[start:end] is e.g. "[1, 3]"."""

    start: int
    end: int
    numbers: tuple[int, ...]


@dataclass(frozen=True)
class Claim:
    """One sentence of an answer with the source numbers its markers cite; text == answer[start:end]."""

    text: str
    start: int
    end: int
    numbers: tuple[int, ...]


@dataclass(frozen=True)
class CheckResult:
    """An answer after repair and checking: invalid numbers dropped, unsupported claims listed."""

    text: str
    citations: tuple[Citation, ...]
    unsupported: tuple[str, ...]
    dropped: tuple[int, ...]
    unsupported_spans: tuple[tuple[int, int], ...] = ()  # where each unsupported claim sits in `text`


def _code_regions(text: str) -> list[tuple[int, int]]:
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


def _numbers(body: str) -> tuple[int, ...] | None:
    """The numbers of a marker body like "1, 3-5", or None when a range is reversed or absurd."""
    if body.isdigit():  # the common "[3]"
        return (int(body),)
    out: list[int] = []
    for item in _SEP.split(body):
        r = _RANGE.search(item)
        if r:
            lo, hi = int(r.group(1)), int(r.group(2))
            if hi < lo or hi - lo >= MAX_RANGE:
                return None
            out.extend(range(lo, hi + 1))
        else:
            out.append(int(item.strip()))
    return tuple(dict.fromkeys(out))


def parse_markers(text: str) -> list[Marker]:
    """Citation markers in reading order, ignoring code spans, code blocks and link texts."""
    regions = _code_regions(text)
    starts = [r[0] for r in regions]
    markers: list[Marker] = []
    for m in _MARKER.finditer(text):
        i = bisect.bisect_right(starts, m.start()) - 1
        if i >= 0 and m.start() < regions[i][1]:
            continue
        if m.start() and text[m.start() - 1] == "]" and not (markers and markers[-1].end == m.start()):
            continue  # the label of a reference-style link, "[text][1]"
        numbers = _numbers(m.group()[1:-1])
        if numbers:
            markers.append(Marker(m.start(), m.end(), numbers))
    return markers


def cited_numbers(text: str) -> list[int]:
    """Cited source numbers, unique, in order of first appearance."""
    return list(dict.fromkeys(n for m in parse_markers(text) for n in m.numbers))


def _remove_markers(text: str, markers: Sequence[Marker], top: int) -> str:
    """Rewrite markers to their numbers in 1..top; an emptied marker goes with one preceding space."""
    kept = [[n for n in m.numbers if 1 <= n <= top] for m in markers]
    # Adjacent markers ("[0][1]") form a run; the space before a run goes only when the whole run does.
    run_emptied = [not k for k in kept]
    for i in range(len(markers) - 2, -1, -1):
        if markers[i].end == markers[i + 1].start:
            run_emptied[i] = run_emptied[i] and run_emptied[i + 1]
    parts: list[str] = []
    pos = 0
    blank_line = True  # whether the output's current line holds only spaces so far
    for i, m in enumerate(markers):
        if len(kept[i]) == len(m.numbers):
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
            parts.append("[" + ", ".join(map(str, kept[i])) + "]")
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
        (left and right and left in _JOIN_LEFT and right in _JOIN_RIGHT)
        or (right and right in "`~" and (left in ("`", "~") or blank_line))
    )


def drop_invalid(text: str, n_sources: int) -> tuple[str, tuple[int, ...]]:
    """Remove numbers outside 1..n_sources from markers; return the new text and the dropped numbers."""
    markers = parse_markers(text)
    dropped = {n for m in markers for n in m.numbers if not 1 <= n <= n_sources}
    if not dropped:
        return text, ()
    return _remove_markers(text, markers, n_sources), tuple(sorted(dropped))


def strip_markers(text: str) -> str:
    """The text without citation markers (and the space before each)."""
    return _remove_markers(text, parse_markers(text), 0)


def _plain(text: str) -> str:
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
    code = _code_regions(text)
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


def _substantive(claim_text: str) -> bool:
    """Whether an uncited sentence asserts something that needs a source (not a refusal or filler)."""
    plain = _plain(claim_text)
    return len(content_words(plain)) >= 3 and not _REFUSAL.search(plain)


def _stem(word: str) -> str:
    """A crude English suffix strip, enough for lexical overlap between a claim and its source."""
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: len(word) - len(suffix)] + repl
    return word


def lexical_support(claim: str, sentence: str) -> float:
    """Content-word overlap in [0, 1] on MiniLM's cosine scale, so one threshold serves both checks."""
    a, b = {_stem(w) for w in content_words(claim)}, {_stem(w) for w in content_words(sentence)}
    if not a or not b:
        return 0.0
    shared = len(a & b)
    raw = (shared / len(a) + shared / len(a | b)) / 2  # mean of the claim's recall and the Jaccard index
    # On the sample corpus raw 0.25 separates true sources from other papers about as well as cosine 0.45 does.
    return min(1.0, raw * _LEXICAL_SCALE)


def _negated(tokens: list[str]) -> bool:
    """Whether a sentence's words hold a negation, which overlap alone cannot see."""
    return any(w in _NEGATIONS or w.endswith("n't") for w in tokens)


def _verbatim(claim: str, sentence: str) -> bool:
    """Whether the claim quotes the sentence, or the sentence makes up most of the claim, word for word."""
    cw, sw = words(claim), words(sentence)
    if len(cw) < _VERBATIM_MIN_WORDS or len(sw) < _VERBATIM_MIN_WORDS or _negated(cw) != _negated(sw):
        return False
    c, s = f" {' '.join(cw)} ", f" {' '.join(sw)} "
    return c in s or (s in c and len(sw) >= 0.6 * len(cw))  # a quote padded with more than a little is not a quote


def _dot(u: Sequence[float], v: Sequence[float]) -> float:
    """Cosine of two vectors, renormalised in case an embedder returns slightly off-unit ones."""
    num = sum(x * y for x, y in zip(u, v, strict=False))
    norm = (sum(x * x for x in u) * sum(y * y for y in v)) ** 0.5
    return num / norm if norm else 0.0


def check_citations(text: str, evidence: Sequence[Evidence], embedder: Embedder | None, threshold: float) -> CheckResult:
    """Drop invalid numbers, then check each cited claim against every sentence of its cited abstracts.

    Support of a claim by a paper is the best score over the abstract's sentences: 1.0 for a near-verbatim
    quote, otherwise the embedding cosine, or without an embedder `lexical_support` (content-word overlap,
    same threshold). A claim is supported when any cited paper reaches `threshold`. Uncited claims count
    as unsupported when substantive (three or more content words and not a refusal like "The collection
    does not ..."); headings such as "**Title** [1]" and pointers such as "See [1]." are not checked, but
    their numbers still yield citations, quoting the evidence's best sentence.
    """
    fixed, dropped = drop_invalid(text, len(evidence))
    claims = split_claims(fixed)
    papers: dict[int, list[Sentence]] = {}
    for n in cited_numbers(fixed):
        abstract = evidence[n - 1].abstract
        papers[n] = [Sentence(abstract[s:e], s, e) for s, e in sentence_spans(abstract)]
    plains = [_plain(c.text) for c in claims]
    # "See [1]." points at a source without asserting anything to check, like a heading does.
    claims = [c if len(content_words(p)) >= 2 else Claim(c.text, c.start, c.end, ()) for c, p in zip(claims, plains, strict=True)]
    # scores[(claim index, n)] = score of each sentence of paper n for that claim.
    scores: dict[tuple[int, int], list[float]] = {}
    pending: list[tuple[int, int]] = []
    for ci, claim in enumerate(claims):
        for n in claim.numbers:
            row = [1.0 if _verbatim(plains[ci], s.text) else 0.0 for s in papers[n]]
            scores[(ci, n)] = row
            if embedder is None:
                scores[(ci, n)] = [max(r, lexical_support(plains[ci], s.text)) for r, s in zip(row, papers[n], strict=True)]
            elif max(row, default=0.0) < 1.0:
                pending.append((ci, n))
    if embedder is not None and pending:
        # One embed call for every claim and sentence still unresolved.
        index: dict[str, int] = {}
        for ci, n in pending:
            for t in [plains[ci], *(s.text for s in papers[n])]:
                index.setdefault(t, len(index))
        vectors = embedder.embed(list(index))
        for ci, n in pending:
            cv = vectors[index[plains[ci]]]
            scores[(ci, n)] = [_dot(cv, vectors[index[s.text]]) for s in papers[n]]
    unsupported: list[str] = []
    spans: list[tuple[int, int]] = []
    for ci, claim in enumerate(claims):
        best = max((max(scores[(ci, n)], default=0.0) for n in claim.numbers), default=0.0)
        if (claim.numbers and best < threshold) or (not claim.numbers and _substantive(claim.text)):
            unsupported.append(plains[ci])
            spans.append((claim.start, claim.end))
    citations: list[Citation] = []
    for n in sorted(papers):
        ev = evidence[n - 1]
        sentence_best = [0.0] * len(papers[n])
        for (_, cn), row in scores.items():
            if cn == n:
                sentence_best = [max(a, b) for a, b in zip(sentence_best, row, strict=True)]
        ranked = sorted(range(len(papers[n])), key=lambda k: -sentence_best[k])
        quotes = [
            Sentence(papers[n][k].text, papers[n][k].start, papers[n][k].end, round(sentence_best[k], 4))
            for k in ranked[:MAX_QUOTES]
            if sentence_best[k] >= threshold or k == ranked[0]
        ]
        if not any(cn == n for _, cn in scores):
            quotes = _fallback_quotes(ev, papers[n])  # cited only by a heading: show the retrieval's best sentence
        citations.append(Citation(n, ev.paper_id, ev.title, tuple(quotes)))
    return CheckResult(fixed, tuple(citations), tuple(unsupported), dropped, tuple(spans))


def _fallback_quotes(ev: Evidence, sentences: list[Sentence]) -> list[Sentence]:
    """The evidence's own best sentence when its span is exact, else the abstract's first sentence."""
    for s in sorted(ev.sentences, key=lambda s: -s.score):
        if ev.abstract[s.start : s.end] == s.text and s.text:
            return [s]
    return sentences[:1]
