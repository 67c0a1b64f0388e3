"""How a question relates to the collection: its topic words and names, the query to search with, and when to refuse."""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.config import Settings
from assistant.models import Evidence, PaperHit
from assistant.text.names import fold, names
from assistant.text.words import stems

# The request words, in one place. Two sets, because merging them changes which papers a summary searches with
# (e.g. "Give me an overview of ...") and so the benchmark figures: a decision for its own change.
# Words that say what kind of answer is wanted rather than what it is about: no abstract has to contain them.
_REQUEST = stems(
    "about say says said collection tell me report reports reported explain summarise summarize summary describe "
    "way ways many much give list mention mentions discuss kind kinds well like have get take"
)
# Whole words that phrase a request for an overview ("What does the collection say about ..."): searching with them
# ranks papers by how they match the phrasing, so summaries search with the topic alone.
_OVERVIEW = frozenset(
    re.findall(
        r"\w+",
        "what which how does do did the this these collection corpus say says said about summarise summarize summary "
        "overview tell me papers paper across reported report reports describe explain discuss mention",
    )
)


def topic_query(question: str) -> str:
    """The question without overview phrasing, for searching; the question itself when nothing is left."""
    kept = [w for w in question.split() if w.casefold().strip("?,.;:!\"'") not in _OVERVIEW]
    return " ".join(kept) if len(kept) >= 2 else question


def topic_stems(question: str) -> set[str]:
    """Stemmed content words of the question without the words that only phrase the request."""
    return stems(fold(question)) - _REQUEST


def name_stems(question: str) -> set[str]:
    """Stems of the names the question mentions: the specific things an answer has to be about."""
    return {s for s in stems(" ".join(names(fold(question)))) if not s.isdigit()} - _REQUEST


def refusal_reason(question: str, hits: Sequence[PaperHit], evidence: Sequence[Evidence], settings: Settings) -> str:
    """Why the evidence is too weak to answer, or '' when it is strong enough.

    Dense similarity of the best chunk decides at both ends: below `refusal_threshold` the question is refused
    (unless the top paper holds every topic word, as for "What is ARTE?", an acronym MiniLM cannot place), and from
    `refusal_confident` up it is answered. In between, lexical checks decide: a name in the question that no retrieved
    abstract mentions, or too large a share of topic words missing from the three best abstracts.
    """
    if not hits:
        return "no papers matched"
    best_dense = max((h.dense for h in hits if h.dense == h.dense), default=0.0)
    if best_dense >= settings.refusal_confident:
        return ""
    topic = topic_stems(question)
    texts = [stems(fold(e.title + " " + e.abstract)) for e in evidence]
    if best_dense < settings.refusal_threshold:
        if topic and texts and topic <= texts[0]:
            return ""
        return f"best match similarity {best_dense:.2f} is below {settings.refusal_threshold:.2f}"
    seen = set().union(*texts) if texts else set()
    absent = sorted(name_stems(question) - seen)
    if absent:
        return "no retrieved abstract mentions " + ", ".join(absent[:4])
    if len(topic) >= 3 and texts:
        missing = topic - set().union(*texts[:3])
        if len(missing) / len(topic) > settings.refusal_missing_terms:
            return "the closest abstracts do not mention " + ", ".join(sorted(missing)[:4])
    return ""
