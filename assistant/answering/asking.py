"""What a question asks for, read once per question: its stems, the names in it, and its answer type."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.text.words import STOPWORDS, stems

if TYPE_CHECKING:
    from assistant.answering.scorer import TermStats

# A token naming a thing: a capital or digit after its first character (B4, CoGEX, GPT-4, IL-6, PrP).
NAME_TOKEN = re.compile(r"\b[A-Za-z0-9]+(?:[-.][A-Za-z0-9]+)*\b")
_QUANTITY_HEAD = "percentage|proportion|fraction|share|size|number|amount|rate|ratio|accuracy|score|count|cost|speed"
_TOKEN = r"[\w@.+-]+"
_END = r"(?![\w@.+-])"  # a whole token: "in-domain" is no "in"
# Closed-class words (auxiliaries, articles, prepositions) never modify the head noun.
_CLOSED = (
    "is|are|was|were|be|been|do|does|did|have|has|had|can|could|would|should|will|may|might"
    "|a|an|the|of|in|on|for|to|by|with|and|or"
)
_NOT_CLOSED = rf"(?!(?:{_CLOSED}){_END})"
_NOT_STOP = rf"(?!(?:{_CLOSED}|{'|'.join(sorted(STOPWORDS))}){_END})"
# Before the head noun: one open-class modifier ("what new score"), or two when neither is a stopword, hyphens and
# symbols included ("what ImageNet top-1 accuracy", "what pass@1 score", "which pretrained base model"). The stopword
# test keeps most clauses out ("which papers report accuracy", "which work fine-tunes models"), though a plain verb
# can still pass as a modifier.
_MODIFIERS = rf"(?:{_NOT_STOP}{_TOKEN} {_NOT_STOP}{_TOKEN} |{_NOT_CLOSED}{_TOKEN} )?"
# Answer types by question word (a taxonomy, not a word list tuned on questions): how + a measurable
# adjective, or what/which + a quantity noun, asks for a number; what/which + an entity noun, or who, a name.
_ASKS_NUMBER = re.compile(
    rf"\bhow (?:many|much|large|big|small|long|fast|often|high|low|far|old|accurate|well)\b|\bby what factor\b"
    # A date: "When was X released?", asked at the start of a clause ("when does" asks a condition; "accuracy when was
    # removed" is no question).
    rf"|(?:^|[,;:]\s*|\band )\s*when (?:was|were|did)\b|\b(?:what|which) (?:year|years|date)\b(?!-)"
    rf"|\b(?:what|which)(?: is| are| was| were)?(?: the| its| their)? {_MODIFIERS}(?:{_QUANTITY_HEAD})\b"
    # A metric in @-notation (pass@1, recall@10) is a quantity head of its own when a verb or preposition follows it
    # ("what pass@1 does X reach"); before a noun it is a modifier ("which pass@k variants"), and after "is" the
    # question asks for a definition ("what is eff@k").
    rf"|\b(?:what|which) {_MODIFIERS}[\w.+-]*@\w+ (?:{_CLOSED}){_END}",
    re.IGNORECASE,
)
_ENTITY_HEAD = "dataset|datasets|benchmark|benchmarks|corpus|model|models|metric|metrics|language|languages|tool|library|name"
_ASKS_NAME = re.compile(rf"\bwho\b|\b(?:what|which)(?: is| are)?(?: the)? {_MODIFIERS}(?:{_ENTITY_HEAD})\b", re.IGNORECASE)
# A stated number of papers ("the two studies on X", "Two papers tie ..."): only nouns that denote papers, since
# "the three approaches" or "two new benchmarks" may sit inside one paper. Not a bound ("at least two", "two or more"),
# not part of a name ("GPT-4 papers"), and "works" only right after a spelled-out number, where it cannot be a verb
# ("which of the three methods works best", "Llama 2 works").
_COUNT_WORDS = {"two": 2, "three": 3, "four": 4, "2": 2, "3": 3, "4": 4}
_ASKS_COUNT = re.compile(
    r"(?<![\w.-])(?<!least )(?<!than )(two|three|four|[234])(?! or\b)"
    r"(?: (?:[\w-]+ ){0,3}?(?:papers|studies|articles)|(?<=[a-z]) works)\b",
    re.IGNORECASE,
)
_DEFINITION = re.compile(r"^\s*what (?:is|are|does) ([A-Za-z0-9][\w.-]*)\b(?:[?]| do\b| mean\b|\s*$)", re.IGNORECASE)


def is_name(token: str) -> bool:
    """A capital or digit after the first character: B4, CoGEX, GPT-4, but not "What"."""
    return any(ch.isupper() or ch.isdigit() for ch in token[1:]) and any(ch.isalpha() for ch in token)


@dataclass(frozen=True)
class QuestionProfile:
    """What the scorer reads from the question once."""

    weights: dict[str, float]  # question stem -> rarity
    names: tuple[tuple[str, float], ...]  # name-like tokens with their rarity
    asks_number: bool
    asks_name: bool
    defined: str | None  # X in "what is X?"


def asks_specific(question: str) -> bool:
    """The question asks for a number or a name (a dataset, a model, a score), not for an explanation or a summary."""
    return bool(_ASKS_NUMBER.search(question) or _ASKS_NAME.search(question))


def asked_count(question: str) -> int | None:
    """How many papers the question says it is about ("the two studies on X"), or None when it does not say."""
    match = _ASKS_COUNT.search(question)
    return _COUNT_WORDS[match.group(1).lower()] if match else None


def profile(question: str, stats: TermStats) -> QuestionProfile:
    """Stems, names and answer type of a question."""
    weights = {s: stats.idf(s) for s in stems(question)}
    names: dict[str, float] = {}
    for token in NAME_TOKEN.findall(question):
        if is_name(token):
            token_stems = stems(token)
            names[token] = max((stats.idf(s) for s in token_stems), default=1.0)
    match = _DEFINITION.search(question)
    return QuestionProfile(
        weights,
        tuple(names.items()),
        bool(_ASKS_NUMBER.search(question)),
        bool(_ASKS_NAME.search(question)),
        match.group(1) if match else None,
    )
