"""Grouping the papers of a summary into themes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from assistant.models import Evidence
from assistant.text.sentences import content_words

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


def _cos(a: Sequence[float], b: Sequence[float]) -> float:
    num = sum(x * y for x, y in zip(a, b, strict=False))
    den = (sum(x * x for x in a) ** 0.5) * (sum(y * y for y in b) ** 0.5)
    return num / den if den else 0.0


def group_themes(
    evidence: Sequence[Evidence], vectors: Sequence[Sequence[float]], threshold: float = 0.45, max_themes: int = 5
) -> list[tuple[str, list[int]]]:
    """Greedy clustering of papers by their evidence vectors; returns (label, indices) per theme."""
    groups: list[tuple[list[float], list[int]]] = []
    for i, vec in enumerate(vectors):
        sims = [_cos(vec, centre) for centre, _ in groups]
        best = max(range(len(sims)), key=lambda j: sims[j]) if sims else -1
        if best >= 0 and (sims[best] >= threshold or len(groups) >= max_themes):
            centre, members = groups[best]
            members.append(i)
            k = len(members)
            groups[best] = ([(c * (k - 1) + v) / k for c, v in zip(centre, vec, strict=False)], members)
        else:
            groups.append((list(vec), [i]))
    return [(_label([evidence[i] for i in members]), members) for _, members in groups]


def _label(members: Sequence[Evidence]) -> str:
    counts: Counter[str] = Counter()
    for ev in members:
        counts.update({w for w in content_words(ev.title + " " + " ".join(s.text for s in ev.sentences)) if w not in _GENERIC})
    top = [w for w, c in counts.most_common(3) if c > 1 or len(members) == 1][:3]
    return ", ".join(top).capitalize() if top else "Other work"
