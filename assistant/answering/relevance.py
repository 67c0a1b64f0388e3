"""How a question relates to the collection: the query a summary searches with, and when to refuse."""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.answering.asking import NAME_TOKEN, is_name
from assistant.answering.scorer import holds_token
from assistant.models import Evidence

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


def refusal_reason(evidence: Sequence[Evidence], missing: Sequence[str], refusal_bar: float) -> str:
    """Why the collection does not answer, or '' when it does.

    The bar is the evidence model's fitted refusal bar (`evals.fit_evidence`): when no sentence of any retrieved paper
    reaches it, nothing retrieved answers the question, however close its topic (a summary's sentences are scored
    against its topic). A comparison whose names match no paper at all is refused by name.
    """
    if not evidence:
        return "no papers matched" + (f": no paper in the collection describes {', '.join(missing)}" if missing else "")
    best = max(e.best for e in evidence)
    if best < refusal_bar:
        shown, bar = apart(best, refusal_bar)
        return f"no sentence of the closest abstracts answers it (best evidence probability {shown} < {bar})"
    return ""


def apart(a: float, b: float) -> tuple[str, str]:
    """Both numbers at the fewest decimals (two to six) that tell them apart: a refusal just under its bar should
    not read "0.06 < 0.06"."""
    for digits in range(2, 7):
        shown = f"{a:.{digits}f}", f"{b:.{digits}f}"
        if shown[0] != shown[1]:
            break
    return shown


def closest_first(question: str, pool: Sequence[Evidence]) -> list[Evidence]:
    """A refusal's papers, closest first: those holding more of the question's names (the paper a near miss asks
    about, "How many parameters does CoEdIT have?"), then by best sentence probability."""
    asked = {t for t in NAME_TOKEN.findall(question) if is_name(t)}

    def held(ev: Evidence) -> int:
        text = f"{ev.title} {ev.abstract}"
        return sum(holds_token(t, text) for t in asked)

    return sorted(pool, key=lambda e: (-held(e), -e.best))
