"""The 12 object-size bins of Remix: COCO small, medium and large, each split into 4 sub-bins.

Each COCO class is split into 4 equal steps of ``log2(area)``: small over ``[4, 10)``, medium
over ``[10, log2(9216))`` and large over ``[log2(9216), 21)``. Objects under 16 px² fall into
bin 0 and objects over 2^21 px² (about 1448²) into bin 11. The pixel-area edges:

====  ========  ===========  ===========  ================
bin   name      from (px²)   to (px²)     square side (px)
====  ========  ===========  ===========  ================
0     small-1   0            45.3         0 .. 6.7
1     small-2   45.3         128          6.7 .. 11.3
2     small-3   128          362.0        11.3 .. 19.0
3     small-4   362.0        1024         19.0 .. 32
4     medium-1  1024         1773.6       32 .. 42.1
5     medium-2  1773.6       3072         42.1 .. 55.4
6     medium-3  3072         5320.9       55.4 .. 72.9
7     medium-4  5320.9       9216         72.9 .. 96
8     large-1   9216         35794.3      96 .. 189.2
9     large-2   35794.3      139022.9     189.2 .. 372.9
10    large-3   139022.9     539955.6     372.9 .. 734.8
11    large-4   539955.6     inf          734.8 .. inf
====  ========  ===========  ===========  ================
"""

from __future__ import annotations

import numpy as np

NUM_BINS = 12
SUB_BINS = 4
# log2(area) ranges of the COCO classes; values outside the outer ones clamp to bins 0 and 11
_SMALL_LOG2 = (4.0, 10.0)
_MEDIUM_LOG2 = (10.0, float(np.log2(96.0**2)))
_LARGE_LOG2 = (float(np.log2(96.0**2)), 21.0)


def _class_edges(low: float, high: float) -> list[float]:
    """The areas that start the 4 sub-bins of one class (its first edge included)."""
    return [float(2.0 ** (low + (high - low) * i / SUB_BINS)) for i in range(SUB_BINS)]


_INNER_EDGES = [
    *_class_edges(*_SMALL_LOG2)[1:],
    32.0**2,
    *_class_edges(*_MEDIUM_LOG2)[1:],
    96.0**2,
    *_class_edges(*_LARGE_LOG2)[1:],
]
AREA_EDGES: np.ndarray = np.array([0.0, *_INNER_EDGES, np.inf])
"""The 13 bin edges in px²: bin ``i`` holds areas in ``[AREA_EDGES[i], AREA_EDGES[i + 1])``."""

BIN_NAMES: tuple[str, ...] = tuple(
    f"{size}-{i}" for size in ("small", "medium", "large") for i in range(1, SUB_BINS + 1)
)


def size_bins(areas: np.ndarray) -> np.ndarray:
    """The size bin of each object area.

    Args:
        areas: object areas in px², any shape.

    Returns:
        Integer bin indices in ``0..11``, the shape of ``areas``.
    """
    areas = np.asarray(areas, dtype=np.float64)
    return np.searchsorted(AREA_EDGES[1:-1], areas, side="right").astype(np.int64)


def size_histogram(areas: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """How many objects (or how much weight) fall into each size bin.

    Args:
        areas: object areas in px², shape ``(N,)``.
        weights: optional weight per object (default 1 each).

    Returns:
        Counts (or summed weights) per bin, shape ``(12,)``, float64.
    """
    bins = size_bins(np.asarray(areas).reshape(-1))
    flat_weights = None if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    return np.bincount(bins, weights=flat_weights, minlength=NUM_BINS).astype(np.float64)
