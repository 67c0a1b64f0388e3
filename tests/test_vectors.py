"""The one vector helper, and the paper map's clustering that uses it."""

from __future__ import annotations

import numpy as np

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
