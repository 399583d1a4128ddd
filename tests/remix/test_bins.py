from __future__ import annotations

import numpy as np

from neo.remix.bins import AREA_EDGES, BIN_NAMES, NUM_BINS, size_bins, size_histogram


def test_edges_shape_and_names() -> None:
    assert NUM_BINS == 12
    assert AREA_EDGES.shape == (13,)
    assert AREA_EDGES[0] == 0.0 and np.isinf(AREA_EDGES[-1])
    assert np.all(np.diff(AREA_EDGES) > 0)
    assert BIN_NAMES[0] == "small-1" and BIN_NAMES[4] == "medium-1" and BIN_NAMES[-1] == "large-4"
    assert len(set(BIN_NAMES)) == 12


def test_coco_class_boundaries_start_bins_4_and_8() -> None:
    assert AREA_EDGES[4] == 32.0**2 and AREA_EDGES[8] == 96.0**2
    bins = size_bins(np.array([1023.999, 1024.0, 9215.999, 9216.0]))
    assert bins.tolist() == [3, 4, 7, 8]


def test_equal_log2_steps_within_a_class() -> None:
    small = np.log2(AREA_EDGES[1:5])
    assert np.allclose(np.diff(np.r_[4.0, small]), 1.5)
    medium = np.log2(AREA_EDGES[4:9])
    assert np.allclose(np.diff(medium), (np.log2(9216) - 10) / 4)
    large = np.log2(np.r_[AREA_EDGES[8:12], 2.0**21])
    assert np.allclose(np.diff(large), (21 - np.log2(9216)) / 4)


def test_monotone_and_clamped() -> None:
    areas = np.geomspace(0.5, 1e8, 500)
    bins = size_bins(areas)
    assert np.all(np.diff(bins) >= 0)
    assert set(bins.tolist()) == set(range(12))
    assert size_bins(np.array([0.0, 1.0, 15.9])).tolist() == [0, 0, 0]
    assert size_bins(np.array([2.0**21, 1e12])).tolist() == [11, 11]


def test_histogram_counts_and_weights() -> None:
    areas = np.array([10.0, 2000.0, 2000.0, 1e7])
    assert size_histogram(areas).tolist() == [1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1]
    weighted = size_histogram(areas, weights=np.array([0.5, 1, 2, 3]))
    assert weighted[0] == 0.5 and weighted[5] == 3 and weighted[11] == 3
    assert size_histogram(np.array([])).shape == (12,)
