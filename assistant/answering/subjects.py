"""What a comparison asks about: the papers it names (its subjects) and the aspects it compares them on."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.models import Filters, PaperHit
from assistant.retrieval.retriever import Retriever
from assistant.text.names import fold, names
from assistant.text.words import content_words

# Words that phrase the comparison itself rather than what is compared.
_FRAME = frozenset(
    re.findall(
        r"\w+",
        "compare compared comparing comparison contrast contrasting differ differs different differently difference "
        "differences versus vs similar similarly similarities alike unlike relate relates respective respectively "
        "two approaches papers paper methods works systems they them their it its do does how what which",
    )
)
_SPLIT = re.compile(r",|;|\band\b|\bor\b|\bvs\.?\b|\bversus\b", re.IGNORECASE)
SEARCH_DEPTH = 10  # papers searched for each name before reading their titles and abstracts for it


@dataclass(frozen=True)
class Subjects:
    """The papers a comparison names, and the names no paper matches."""

    hits: tuple[PaperHit, ...]
    missing: tuple[str, ...]


def _mentions(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(fold(name))}(?![\w-])", fold(text), re.IGNORECASE) is not None


def _named(name: str, hits: Sequence[PaperHit]) -> PaperHit | None:
    """The first hit whose title holds the name, else the first whose abstract does."""
    in_title = next((h for h in hits if _mentions(name, h.title)), None)
    return in_title or next((h for h in hits if _mentions(name, h.abstract)), None)


def resolve(retriever: Retriever, question: str, filters: Filters | None) -> Subjects:
    """Each name in the question resolved to one paper: a title that holds it, else an abstract, else none."""
    found: list[PaperHit] = []
    missing: list[str] = []
    for name in names(question):
        pick = _named(name, retriever.search(name, SEARCH_DEPTH, filters))
        if pick is None:
            # A name in one abstract only ("AlgoPerf") can rank below the fused top 10; BM25 alone finds it.
            pick = _named(name, retriever.lexical_papers(name, SEARCH_DEPTH, filters))
        if pick is None:
            missing.append(name)
        elif all(pick.paper_id != h.paper_id for h in found):
            found.append(pick)
    return Subjects(tuple(found), tuple(missing))


def without_names(question: str, subject_names: Sequence[str], stand_in: str = "it") -> str:
    """The question with each subject's name replaced by a pronoun."""
    for name in sorted(subject_names, key=len, reverse=True):
        question = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", stand_in, question)
    return question


def aspects(question: str, subject_names: Sequence[str]) -> list[str]:
    """The aspects a comparison names ("how they use pseudo-code" -> "pseudo-code"), in order; none for a bare one."""
    text = without_names(question, subject_names, " , ")
    out: list[str] = []
    for part in _SPLIT.split(text):
        kept = [w for w in content_words(part) if w not in _FRAME]
        if kept and " ".join(kept) not in out:
            out.append(" ".join(kept))
    return out
