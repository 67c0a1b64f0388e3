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


def _own_name(name: str, title: str) -> bool:
    """The title holds the name as a name of its own, not the start of a longer one ("MBPP" in "MBPP Pro")."""
    pattern = rf"(?<![\w-])(?i:{re.escape(fold(name))})(?![\w-])(?! [A-Z0-9][\w-]*(?:[^\w-]|$))"
    return re.search(pattern, fold(title)) is not None


def _introduces(name: str, abstract: str) -> bool:
    """The abstract introduces the name: spells out an acronym ("Mostly Basic Programming Problems (MBPP)") or
    defines it ("X is", "we propose X")."""
    t = re.escape(fold(name))
    verbs = "propose|proposes|introduce|introduces|present|presents|develop|develops|build|builds|design|designs|"
    verbs += "called|named|dubbed|termed"
    introduced = rf"\b(?:{verbs})\s+(?:\w+\s+){{0,2}}{t}\b"
    # Not the scorer's looser `defines` ("X," and "X (" also match a name in a list of baselines); "X (Expansion ...)"
    # spells a name out only when a capital follows the bracket.
    spelled = rf"\({t}\)|(?<![\w-]){t} \([A-Z]"
    return re.search(rf"{spelled}|{introduced}|(?<![\w-]){t}(?:,| is| are) an?\b", fold(abstract)) is not None


def _named(name: str, hits: Sequence[PaperHit]) -> tuple[PaperHit | None, bool]:
    """The paper a name denotes: the first hit whose title holds it as a name of its own, else whose abstract
    introduces it, else whose title holds it at all, else whose abstract mentions it; and whether it was one of the
    first two (the paper introduces the name rather than mentions it). A name that several of the papers introduce
    ("large language models (LLMs)" in many abstracts) is a common term, which no paper introduces."""
    tests = (
        lambda h: _own_name(name, h.title),
        lambda h: _introduces(name, h.abstract),
        lambda h: _mentions(name, h.title),
        lambda h: _mentions(name, h.abstract),
    )
    pick, rank = next(((h, i) for i, test in enumerate(tests) for h in hits if test(h)), (None, len(tests)))
    common = pick is not None and any(_owns(name, h) for h in hits if h.paper_id != pick.paper_id)
    return pick, rank < 2 and not common


def resolve(retriever: Retriever, question: str, filters: Filters | None) -> Subjects:
    """Each name in the question resolved to one paper (the one that introduces it, see `_named`), else none.

    A comparison's subjects are papers. A name that papers only mention (a baseline, a source dataset, a model they
    evaluate) is what they discuss: with two or more names introduced by papers, those papers alone are the subjects,
    and when no paper introduces any of the names, the question names no paper at all.
    """
    picks: dict[str, tuple[PaperHit, bool]] = {}  # paper id -> the paper, and whether it introduces a name that led to it
    missing: list[str] = []
    for name in names(question):
        pick, introduced = _named(name, retriever.search(name, SEARCH_DEPTH, filters))
        if pick is None:
            # A name in one abstract only ("AlgoPerf") can rank below the fused top 10; BM25 alone finds it.
            pick, introduced = _named(name, retriever.lexical_papers(name, SEARCH_DEPTH, filters))
        if pick is None:
            missing.append(name)
        else:
            first, before = picks.get(pick.paper_id, (pick, False))
            picks[pick.paper_id] = (first, before or introduced)
    strong = sum(introduced for _, introduced in picks.values())
    # Beside a single introduced paper, a mentioned name can still be the other subject ("MBPP and the Python puzzles
    # dataset": the puzzles paper mentions Python, and no paper introduces it), so it keeps its row.
    found = [h for h, introduced in picks.values() if introduced or strong == 1]
    return Subjects(tuple(found), tuple(missing))


# "Which papers ...", "what studies ...": the question asks for publications, however many names it holds.
_ASKS_FOR_WORKS = re.compile(r"\b(papers|works|studies|articles|publications|research|literature)\b", re.IGNORECASE)


def one_named_work(retriever: Retriever, question: str, filters: Filters | None) -> PaperHit | None:
    """The one paper a question is about, when its names resolve as a comparison's do (`resolve`) to that paper alone
    ("Which benchmarks were used to evaluate CodeDPO?"), and it neither asks for papers nor uses a name as a point of
    reference; else None.

    Plural words after "which" read as an overview ("which benchmarks"), but asked of one named paper they are
    details inside it, which a direct answer from that paper gives and a summary of seven papers does not.
    """
    found = names(question)
    if not found or _ASKS_FOR_WORKS.search(question) or any(_reference(name, question) for name in found):
        return None
    # One subject and no unmatched name: exactly one paper introduces a name, and every other name leads to it too.
    subjects = resolve(retriever, question, filters)
    return subjects.hits[0] if len(subjects.hits) == 1 and not subjects.missing else None


def _reference(name: str, question: str) -> bool:
    """The name is a point of reference for other works ("approaches other than AlphaCode", "methods like DARTS")."""
    before = r"\b(?:other than|besides|beyond|apart from|except|like|such as|similar to|unlike|in addition to|as)\s+(?:the\s+)?"
    return re.search(before + re.escape(name) + r"(?![\w-])", question, re.IGNORECASE) is not None


def _owns(name: str, hit: PaperHit) -> bool:
    return _own_name(name, hit.title) or _introduces(name, hit.abstract)


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
