"""A 2-D map of the collection: each paper's mean chunk vector projected by PCA, coloured by theme."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from assistant.answering.themes import group_themes
from assistant.errors import StoreError
from assistant.models import Answer, Evidence
from assistant.vectors import as_matrix, mean, units

if TYPE_CHECKING:
    from assistant.index.store import ChunkStore

PAGE = 5000
MAX_THEMES = 8
# Drawn in this order, so a highlighted paper is never hidden under the rest of the collection.
ROLES = ("other", "retrieved", "cited")
ROLE_SIZE = (40, 130, 260)


@dataclass(frozen=True)
class MapPoint:
    """One paper on the map."""

    paper_id: str
    title: str
    x: float
    y: float
    theme: str
    year: int | None = None


def _chunk_pages(store: ChunkStore) -> Iterator[dict[str, Any]]:
    """Every chunk's vector and metadata, a page at a time (the store's reading API carries no vectors)."""
    offset = 0
    while True:
        try:
            got = store.collection.get(include=["embeddings", "metadatas"], limit=PAGE, offset=offset)
        except Exception as exc:  # chromadb raises many types; the page shows one line
            raise StoreError(f"reading the chunk vectors of collection {store.name!r} failed: {exc}") from None
        if not len(got["ids"]):
            return
        yield got
        if len(got["ids"]) < PAGE:
            return
        offset += PAGE


def paper_vectors(store: ChunkStore) -> tuple[list[dict[str, Any]], npt.NDArray[np.float64]]:
    """Each paper's metadata (from its first chunk) and the mean of its chunk vectors, in title order."""
    vectors: dict[str, list[Any]] = {}
    metas: dict[str, dict[str, Any]] = {}
    for got in _chunk_pages(store):
        for chunk_id, vec, meta in zip(got["ids"], got["embeddings"], got["metadatas"], strict=True):
            pid = str((meta or {}).get("paper_id", chunk_id.rsplit(":", 1)[0]))
            vectors.setdefault(pid, []).append(vec)
            if pid not in metas or int((meta or {}).get("n", 1)) == 0:
                metas[pid] = dict(meta or {})
    order = sorted(metas, key=lambda p: (str(metas[p].get("title", "")).casefold(), p))
    rows = [mean(vectors[p]) for p in order]
    return [metas[p] for p in order], as_matrix(rows) if rows else np.zeros((0, 0))


def project(vectors: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The rows' first two principal components (zeros where there are fewer), signs fixed so reruns agree."""
    n = len(vectors)
    out = np.zeros((n, 2))
    if n < 2:
        return out
    centred = vectors - vectors.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    for k in range(min(2, len(axes))):
        axis = axes[k]
        # SVD may return either sign; the larger loading is made positive so the picture does not flip.
        axis = axis if axis[np.argmax(np.abs(axis))] >= 0 else -axis
        out[:, k] = centred @ axis
    return out


def kmeans(vectors: npt.NDArray[np.float64], k: int, rounds: int = 25) -> npt.NDArray[np.int64]:
    """Cluster of each row by spherical k-means, seeded by k-means++ with a fixed seed so that reruns agree."""
    unit = units(vectors)
    rng = np.random.default_rng(0)
    centres = [unit[int(np.argmax(unit @ unit.mean(axis=0)))]]
    while len(centres) < k:
        # Far papers are likelier seeds, but a lone outlier is not certain to become a theme of its own.
        distance = np.clip(1.0 - (unit @ np.asarray(centres).T).max(axis=1), 0.0, None) ** 2
        total = float(distance.sum())
        centres.append(unit[int(rng.choice(len(unit), p=distance / total)) if total > 0 else len(centres) % len(unit)])
    matrix = np.asarray(centres)
    labels = np.zeros(len(unit), dtype=np.int64)
    for _ in range(rounds):
        labels = np.argmax(unit @ matrix.T, axis=1)
        moved = np.asarray([unit[labels == j].mean(axis=0) if np.any(labels == j) else matrix[j] for j in range(k)])
        if np.allclose(moved, matrix):
            break
        matrix = moved
    return labels


def themes(metas: list[dict[str, Any]], vectors: npt.NDArray[np.float64]) -> list[str]:
    """A theme label per paper: k-means clusters, each named by the summary mode's theme labeller."""
    k = max(1, min(MAX_THEMES, round((len(metas) / 2) ** 0.5)))
    labels = kmeans(vectors, min(k, len(metas)))
    names: dict[int, str] = {}
    for j in sorted(set(labels.tolist())):
        members = [i for i in range(len(metas)) if labels[i] == j]
        evidence = [Evidence(str(metas[i].get("paper_id", "")), str(metas[i].get("title", "")), "", 0.0, ()) for i in members]
        # A threshold below any cosine keeps the cluster as one theme; only its label is wanted here.
        name = group_themes(evidence, vectors[members], threshold=-2.0, max_themes=1)[0][0]
        names[j] = name if name not in names.values() else f"{name} ({j + 1})"
    return [names[int(j)] for j in labels]


def build_map(metas: list[dict[str, Any]], vectors: npt.NDArray[np.float64]) -> tuple[MapPoint, ...]:
    """Points for the papers: the projection of their vectors, coloured by the cluster each falls into."""
    if not metas:
        return ()
    theme_of = themes(metas, vectors)
    xy = project(vectors)
    return tuple(
        MapPoint(
            paper_id=str(m.get("paper_id", "")),
            title=str(m.get("title", "")),
            x=round(float(xy[i, 0]), 5),
            y=round(float(xy[i, 1]), 5),
            theme=theme_of[i],
            year=y if isinstance(y := m.get("year"), int) else None,
        )
        for i, m in enumerate(metas)
    )


def paper_map(store: ChunkStore) -> tuple[MapPoint, ...]:
    """The map of every paper in the store (uncached: the UI caches it per collection revision)."""
    return build_map(*paper_vectors(store))


def answer_roles(answer: Answer) -> dict[str, str]:
    """'cited' or 'retrieved' for each paper the answer used."""
    roles = {ev.paper_id: "retrieved" for ev in answer.evidence}
    roles.update({c.paper_id: "cited" for c in answer.citations})
    return roles


def _by_role(channel: str, values: tuple[float, ...], legend: str | None = None) -> dict[str, Any]:
    """An encoding channel that follows a paper's role in the answer; only one channel carries the legend."""
    scale = {"domain": list(ROLES), "range": list(values)}
    return {channel: {"field": "role", "type": "nominal", "scale": scale, **({"title": legend} if legend else {"legend": None})}}


def map_spec(points: tuple[MapPoint, ...], roles: Mapping[str, str] | None = None, height: int = 420) -> dict[str, Any]:
    """A Vega-Lite scatter plot: colour by theme, the title on hover, highlighted papers larger and on top.

    SVG rather than canvas: each paper is then one mark in the page, which people's tools (and tests) can read.
    """
    roles = roles or {}
    rows = [
        {
            "x": p.x,
            "y": p.y,
            "title": p.title,
            "theme": p.theme,
            "year": str(p.year) if p.year else "",
            "role": roles.get(p.paper_id, "other"),
        }
        for p in points
    ]
    rows.sort(key=lambda r: ROLES.index(str(r["role"])) if r["role"] in ROLES else 0)
    encoding: dict[str, Any] = {
        "x": {"field": "x", "type": "quantitative", "axis": None},
        "y": {"field": "y", "type": "quantitative", "axis": None},
        "color": {
            "field": "theme",
            "type": "nominal",
            "scale": {"scheme": "tableau10"},
            "legend": {"title": "Theme", "orient": "bottom", "columns": 3, "labelLimit": 280},
        },
        "tooltip": [
            {"field": "title", "title": "Paper"},
            {"field": "theme", "title": "Theme"},
            {"field": "year", "title": "Year"},
        ],
    }
    if roles:
        encoding.update(_by_role("size", ROLE_SIZE, "In this answer"))
        encoding.update(_by_role("opacity", (0.25, 0.9, 1.0)))
        encoding.update(_by_role("strokeWidth", (0, 1, 2.5)))
        encoding["tooltip"].append({"field": "role", "title": "In this answer"})
    return {
        "usermeta": {"embedOptions": {"renderer": "svg"}},
        "data": {"values": rows},
        "mark": {"type": "point", "filled": True, "stroke": "black", "size": 60},
        "encoding": encoding,
        "height": height,
    }
