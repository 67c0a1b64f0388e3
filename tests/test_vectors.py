"""The one vector helper, and the paper map's clustering that uses it."""

from __future__ import annotations

import numpy as np
import pytest

from assistant import vectors
from assistant.vectors import units
from ui.paper_map import kmeans


def test_units_scales_rows_and_keeps_zero_rows() -> None:
    out = units([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]])
    assert np.allclose(out, [[0.6, 0.8], [0.0, 0.0], [0.0, -1.0]])
    assert units([]).size == 0
    assert np.allclose(units([0.0, 2.0]), [[0.0, 1.0]])


def test_kmeans_separates_directions_not_lengths() -> None:
    # Two directions at very different lengths: spherical k-means groups by direction only.
    rows = np.asarray([[1.0, 0.05], [100.0, 2.0], [0.9, -0.1], [0.05, 1.0], [-3.0, 80.0], [0.1, 0.9]])
    labels = kmeans(rows, 2)
    assert len(set(labels[:3])) == 1 and len(set(labels[3:])) == 1 and labels[0] != labels[3]


def test_best_matches_is_maxsim_per_group() -> None:
    queries = np.asarray([[1.0, 0.0], [0.0, 1.0]])
    got = vectors.best_matches(queries, [np.asarray([[0.6, 0.8], [1.0, 0.0]]), np.zeros((0, 2)), np.asarray([[0.0, 1.0]])])
    assert got.tolist() == [pytest.approx([1.0, 0.8]), [0.0, 0.0], pytest.approx([0.0, 1.0])]


def test_best_matches_equals_one_group_at_a_time() -> None:
    rng = np.random.default_rng(0)
    queries = units(rng.normal(size=(3, 5)))
    groups = [units(rng.normal(size=(n, 5))) for n in (4, 0, 1, 7)]
    got = vectors.best_matches(queries, groups)
    assert got.shape == (4, 3)
    for row, group in zip(got, groups, strict=True):
        want = (queries @ group.T).max(axis=1) if len(group) else np.zeros(3)
        assert row.tolist() == pytest.approx(want.tolist(), abs=1e-6)
