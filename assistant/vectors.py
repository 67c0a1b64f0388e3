"""The one vector-math helper: dot products, cosines and means over embedding vectors, with numpy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Vector = Sequence[float] | npt.NDArray[np.floating[Any]]
Matrix = Sequence[Vector] | npt.NDArray[np.floating[Any]]


def as_matrix(vectors: Matrix) -> npt.NDArray[np.float64]:
    """Vectors as the rows of a float64 matrix (0 x 0 when there are none)."""
    out = np.asarray(vectors, dtype=np.float64)
    return out.reshape(0, 0) if out.size == 0 else out


def dots(query: Vector, vectors: Matrix) -> list[float]:
    """The dot product of `query` with each vector; embedders return unit vectors, so these are cosines."""
    matrix = as_matrix(vectors)
    if not len(matrix):
        return []
    return [float(x) for x in matrix @ np.asarray(query, dtype=np.float64)]


def cosines(query: Vector, vectors: Matrix) -> list[float]:
    """Cosine of `query` with each vector, renormalised in case an embedder returns off-unit ones; 0 for a zero vector."""
    matrix = as_matrix(vectors)
    if not len(matrix):
        return []
    q = np.asarray(query, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(q)
    raw = matrix @ q
    safe = np.where(norms > 0, norms, 1.0)
    return [float(x) for x in np.where(norms > 0, raw / safe, 0.0)]


def cosine(u: Vector, v: Vector) -> float:
    """Cosine of two vectors; 0 when either is zero."""
    return cosines(u, [np.asarray(v, dtype=np.float64)])[0]


def mean(vectors: Matrix) -> npt.NDArray[np.float64]:
    """The mean vector (empty for no vectors)."""
    matrix = as_matrix(vectors)
    return matrix.mean(axis=0) if len(matrix) else np.zeros(0)


def unit(vector: Vector) -> npt.NDArray[np.float64]:
    """The vector scaled to length one (a zero vector stays zero)."""
    v = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(v))
    return v / norm if norm else v


def units(vectors: Matrix) -> npt.NDArray[np.float64]:
    """Each row scaled to length one (zero rows stay zero); one vector is one row."""
    matrix = as_matrix(vectors)
    if not matrix.size:
        return matrix
    matrix = np.atleast_2d(matrix)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def best_matches(queries: Matrix, groups: Sequence[Matrix]) -> npt.NDArray[np.float64]:
    """MaxSim: for each group of rows and each query row, the query's largest dot product with the group's rows (cosines
    for unit vectors; 0 for an empty group). One row per group, computed in one matrix product."""
    q = np.asarray(queries, dtype=np.float32)
    sizes = [len(g) for g in groups]
    out = np.zeros((len(groups), len(q)))
    if not len(q) or not sum(sizes):
        return out
    sims = q @ np.concatenate([np.asarray(g, dtype=np.float32).reshape(n, -1) for g, n in zip(groups, sizes, strict=True) if n]).T
    starts = np.cumsum([0] + [n for n in sizes if n])[:-1]
    out[[i for i, n in enumerate(sizes) if n]] = np.maximum.reduceat(sims, starts, axis=1).T
    return out
