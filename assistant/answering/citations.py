"""Checking an answer's citations: invalid numbers dropped, each claim checked against the sentences it cites."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from assistant.answering.claims import Claim, plain_text, split_claims
from assistant.answering.markers import Marker, cited_numbers, drop_invalid, parse_markers, strip_markers
from assistant.answering.refusals import is_refusal
from assistant.index.embed import Embedder
from assistant.models import Citation, Evidence, Sentence
from assistant.text.sentences import sentence_spans
from assistant.text.words import content_words, stems, words
from assistant.vectors import cosines

# The marker and claim parsers are part of this module's interface for callers that check answers.
__all__ = [
    "CheckResult",
    "Claim",
    "Marker",
    "check_citations",
    "cited_numbers",
    "drop_invalid",
    "lexical_support",
    "parse_markers",
    "split_claims",
    "strip_markers",
]

MAX_QUOTES = 3
_VERBATIM_MIN_WORDS = 5  # shorter quotes match by chance too easily
_NEGATIONS = frozenset({"not", "no", "never", "cannot", "without", "nor", "neither"})
_LEXICAL_SCALE = 1.8
_Scores = dict[tuple[int, int], list[float]]  # (claim index, source number) -> score of each sentence of that source


@dataclass(frozen=True)
class CheckResult:
    """An answer after repair and checking: invalid numbers dropped, unsupported claims listed."""

    text: str
    citations: tuple[Citation, ...]
    unsupported: tuple[str, ...]
    dropped: tuple[int, ...]
    unsupported_spans: tuple[tuple[int, int], ...] = ()  # where each unsupported claim sits in `text`


def _substantive(claim_text: str) -> bool:
    """Whether an uncited sentence asserts something that needs a source (not a refusal or filler)."""
    plain = plain_text(claim_text)
    return len(content_words(plain)) >= 3 and not is_refusal(plain)


def lexical_support(claim: str, sentence: str) -> float:
    """Content-word overlap in [0, 1] on MiniLM's cosine scale, so one threshold serves both checks."""
    a, b = stems(claim), stems(sentence)
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
    papers: dict[int, list[Sentence]] = {}
    for n in cited_numbers(fixed):
        abstract = evidence[n - 1].abstract
        papers[n] = [Sentence(abstract[s:e], s, e) for s, e in sentence_spans(abstract)]
    claims = split_claims(fixed)
    plains = [plain_text(c.text) for c in claims]
    # "See [1]." points at a source without asserting anything to check, like a heading does.
    claims = [c if len(content_words(p)) >= 2 else Claim(c.text, c.start, c.end, ()) for c, p in zip(claims, plains, strict=True)]
    scores = _score_claims(claims, plains, papers, embedder)
    unsupported: list[str] = []
    spans: list[tuple[int, int]] = []
    for ci, claim in enumerate(claims):
        best = max((max(scores[(ci, n)], default=0.0) for n in claim.numbers), default=0.0)
        if (claim.numbers and best < threshold) or (not claim.numbers and _substantive(claim.text)):
            unsupported.append(plains[ci])
            spans.append((claim.start, claim.end))
    citations = tuple(_citation(n, evidence[n - 1], papers[n], scores, threshold) for n in sorted(papers))
    return CheckResult(fixed, citations, tuple(unsupported), dropped, tuple(spans))


def _score_claims(
    claims: Sequence[Claim], plains: Sequence[str], papers: dict[int, list[Sentence]], embedder: Embedder | None
) -> _Scores:
    """Each claim's support by each sentence of each paper it cites: verbatim first, then cosine or word overlap."""
    scores: _Scores = {}
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
        embedded = embedder.embed(list(index))
        for ci, n in pending:
            scores[(ci, n)] = cosines(embedded[index[plains[ci]]], [embedded[index[s.text]] for s in papers[n]])
    return scores


def _citation(n: int, ev: Evidence, sentences: list[Sentence], scores: _Scores, threshold: float) -> Citation:
    """Source `n` with up to MAX_QUOTES of its sentences that best support the claims citing it."""
    sentence_best = [0.0] * len(sentences)
    for (_, cn), row in scores.items():
        if cn == n:
            sentence_best = [max(a, b) for a, b in zip(sentence_best, row, strict=True)]
    ranked = sorted(range(len(sentences)), key=lambda k: -sentence_best[k])
    quotes = [
        Sentence(sentences[k].text, sentences[k].start, sentences[k].end, round(sentence_best[k], 4))
        for k in ranked[:MAX_QUOTES]
        if sentence_best[k] >= threshold or k == ranked[0]
    ]
    if not any(cn == n for _, cn in scores):
        quotes = _fallback_quotes(ev, sentences)  # cited only by a heading: show the retrieval's best sentence
    return Citation(n, ev.paper_id, ev.title, tuple(quotes))


def _fallback_quotes(ev: Evidence, sentences: list[Sentence]) -> list[Sentence]:
    """The evidence's lead quote when its span is exact (else the next one), else the abstract's first sentence."""
    for s in ev.sentences:
        if ev.abstract[s.start : s.end] == s.text and s.text:
            return [s]
    return sentences[:1]
