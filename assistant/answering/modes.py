"""Which kind of answer a question wants (ask, compare or summarise): a small classifier fitted on labelled questions.

The inputs are cues a reader would use: whether the wording asks for a comparison or an overview, how many names the
question holds and whether two of them stand side by side ("CodeDPO and Effi-Code"), whether it asks for one work
("which paper"), for many ("which papers", "approaches") or about the whole collection ("here"), and where the
question's vector sits against the mean vector of each mode's training questions ("What work is there on X?" reads
as an overview without any cue word). One-vs-rest logistic regressions over these are fitted by
`python -m evals.fit_modes`; the most probable mode wins. Without a vector from the fitted embedder, the cue-only
regressions decide.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from assistant.answering.answerability import is_claim_check
from assistant.answering.asking import asked_count
from assistant.answering.scorer import EvidenceModel
from assistant.models import Mode
from assistant.text.names import names
from assistant.vectors import unit

MODES: tuple[Mode, ...] = ("ask", "compare", "summarise")
MODE_PARAMS_PATH = Path(__file__).with_name("mode_params.json")
CUE_FEATURES: tuple[str, ...] = (
    "compare_cue",
    "summarise_cue",
    "names",
    "paired_names",
    "one_work",
    "many_works",
    "whole_collection",
)
VECTOR_FEATURES: tuple[str, ...] = tuple(f"near_{m}" for m in MODES)

_COMPARE = re.compile(
    r"\b(compare[sd]?|comparison|comparing|contrast|differ(s|ence|ences|ently)?|versus|vs\.?|"
    r"both|each|relate[sd]? to|how do .+ and .+|similarit(y|ies)|trade-?offs?)\b",
    re.IGNORECASE,
)
# Words that ask for an overview whatever else the question names.
_OVERVIEW_WORDS = r"summari[sz]e|summary|overview|survey|landscape|themes?|review"
_SUMMARISE = re.compile(
    rf"\b({_OVERVIEW_WORDS}|what does (the|this) collection say|across the collection|which (papers|benchmarks|works|methods))\b",
    re.IGNORECASE,
)
_UNIT = r"(paper|work|study|article|method|approach|system|tool|model|benchmark|dataset|framework|technique|survey|review)"
# "Which paper ...", "the approach that ...": the question is after one work, so a direct answer.
_ONE_WORK = re.compile(rf"\b(which|the|a|one|this|that)\s+(\w+\s+)?{_UNIT}\b(?!s)", re.IGNORECASE)
# "papers", "approaches", "research on": the question is after several works at once.
_MANY_WORKS = re.compile(rf"\b({_UNIT[1:-1]})e?s\b|\b(studies|research|literature|work (on|in|about))\b", re.IGNORECASE)
# "here", "in this collection": the question is about what the collection holds, which is an overview.
_WHOLE_COLLECTION = re.compile(r"\b(here|(this|the) (collection|corpus)|these papers)\b", re.IGNORECASE)
# What may stand between two names that are a comparison's subjects: "A and B", "A, B or C", "in A and in B", "A vs B".
_BETWEEN = re.compile(r"^(?:\W|\b(?:and|or|in|vs|versus|with|the)\b)*$", re.IGNORECASE)


def _paired(question: str, found: Sequence[str]) -> bool:
    spans = sorted((i, i + len(n)) for n in found if (i := question.find(n)) >= 0)
    return any(_BETWEEN.match(question[a_end:b_start]) for (_, a_end), (b_start, _) in itertools.pairwise(spans))


def cues(question: str) -> np.ndarray:
    """The wording's cues, in `CUE_FEATURES` order."""
    found = names(question)
    return np.array(
        [
            float(bool(_COMPARE.search(question))),
            float(bool(_SUMMARISE.search(question))),
            min(len(found), 3) / 3.0,  # past three names, more say nothing new
            float(_paired(question, found)),
            float(bool(_ONE_WORK.search(question))),
            float(bool(_MANY_WORKS.search(question))),
            float(bool(_WHOLE_COLLECTION.search(question))),
        ]
    )


_OVERVIEW = re.compile(rf"\b({_OVERVIEW_WORDS}|across)\b", re.IGNORECASE)


def asks_overview(question: str) -> bool:
    """The question says in so many words that it wants an overview, or asks about the whole collection."""
    return bool(_OVERVIEW.search(question) or _WHOLE_COLLECTION.search(question))


@dataclass(frozen=True)
class ModeModel:
    """One-vs-rest regressions with and without the vector features, and the centroids those are measured against."""

    embedder: str  # the embedding model the centroids were computed with
    centroids: np.ndarray  # one unit row per mode, in MODES order
    with_vector: tuple[EvidenceModel, ...]
    cues_only: tuple[EvidenceModel, ...]

    def probabilities(self, question: str, vector: Sequence[float] | None = None, embedder: str | None = None) -> np.ndarray:
        """Each mode's probability (one-vs-rest, so they need not sum to one), in MODES order."""
        x = cues(question)
        models = self.cues_only
        if vector is not None and embedder == self.embedder and len(vector) == self.centroids.shape[1]:
            x, models = np.concatenate([x, self.centroids @ unit(vector)]), self.with_vector
        return np.array([float(m.probability(x[None, :])[0]) for m in models])

    def detect(self, question: str, vector: Sequence[float] | None = None, embedder: str | None = None) -> Mode:
        return MODES[int(np.argmax(self.probabilities(question, vector, embedder)))]

    def to_dict(self) -> dict[str, Any]:
        return {
            "embedder": self.embedder,
            "centroids": [[round(float(v), 6) for v in row] for row in self.centroids],
            "with_vector": {m: model.to_dict() for m, model in zip(MODES, self.with_vector, strict=True)},
            "cues_only": {m: model.to_dict() for m, model in zip(MODES, self.cues_only, strict=True)},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str) -> ModeModel:
        """The model from its saved form; a clear error names the file and field that is wrong."""
        try:
            centroids = np.asarray(data["centroids"], dtype=np.float64)
            full = tuple(EvidenceModel.from_dict(data["with_vector"][m], source, CUE_FEATURES + VECTOR_FEATURES) for m in MODES)
            short = tuple(EvidenceModel.from_dict(data["cues_only"][m], source, CUE_FEATURES) for m in MODES)
            embedder = str(data["embedder"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: bad or missing field {exc}") from None
        if centroids.ndim != 2 or centroids.shape[0] != len(MODES):
            raise ValueError(f"{source}: centroids need one row per mode ({len(MODES)})")
        return cls(embedder, centroids, full, short)


@lru_cache(maxsize=2)
def load_mode_model(path: Path = MODE_PARAMS_PATH) -> ModeModel:
    """The committed mode classifier (cached); refit with `python -m evals.fit_modes`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the mode classifier ({exc}); run python -m evals.fit_modes --write") from None
    return ModeModel.from_dict(data.get("model", {}), str(path))


def detect_mode(question: str, vector: Sequence[float] | None = None, embedder: str | None = None) -> Mode:
    """The mode the question's wording (and, from the fitted embedder, its vector) most probably wants."""
    return load_mode_model().detect(question, vector, embedder)


def resolve_mode(
    question: str, requested: str | None, vector: Sequence[float] | None = None, embedder: str | None = None
) -> Mode:
    """The user's explicit mode, or the detected one for None/'auto'."""
    for mode in MODES:
        if requested == mode:
            return mode
    if requested not in (None, "", "auto"):
        raise ValueError(f"unknown mode {requested!r}; use auto, ask, compare or summarise")
    # A claim check ("Is it true that two studies ...") is a question about the claim, answered by the claim model;
    # a question that says how many papers it is about ("the two studies on X") wants them side by side.
    if is_claim_check(question):
        return "ask"
    if asked_count(question) is not None:
        return "compare"
    return detect_mode(question, vector, embedder)
