"""Grouping the papers of a summary into themes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from assistant.models import Evidence
from assistant.text.words import content_words
from assistant.vectors import Matrix, as_matrix, cosines

_GENERIC = frozenset(
    [
        "large",
        "language",
        "model",
        "models",
        "llm",
        "llms",
        "learning",
        "via",
        "towards",
        "toward",
        "neural",
        "data",
        "training",
        "language",
        "code",
        "generation",
        "evaluating",
        "exploring",
        "improving",
        "efficient",
        "using",
    ]
)


def group_themes(
    evidence: Sequence[Evidence], paper_vectors: Matrix, threshold: float = 0.45, max_themes: int = 5
) -> list[tuple[str, list[int]]]:
    """Greedy clustering of papers by their evidence vectors; returns (label, indices) per theme."""
    groups: list[tuple[npt.NDArray[np.float64], list[int]]] = []
    for i, vec in enumerate(as_matrix(paper_vectors)):
        sims = cosines(vec, [centre for centre, _ in groups]) if groups else []
        best = max(range(len(sims)), key=lambda j: sims[j]) if sims else -1
        if best >= 0 and (sims[best] >= threshold or len(groups) >= max_themes):
            centre, members = groups[best]
            members.append(i)
            k = len(members)
            groups[best] = ((centre * (k - 1) + vec) / k, members)  # the running mean of the members
        else:
            groups.append((vec, [i]))
    return [(_label([evidence[i] for i in members]), members) for _, members in groups]


def _label(members: Sequence[Evidence]) -> str:
    counts: Counter[str] = Counter()
    for ev in members:
        counts.update({w for w in content_words(ev.title + " " + " ".join(s.text for s in ev.sentences)) if w not in _GENERIC})
    top = [w for w, c in counts.most_common(3) if c > 1 or len(members) == 1][:3]
    return ", ".join(top).capitalize() if top else "Other work"
