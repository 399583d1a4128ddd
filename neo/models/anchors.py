"""Anchor shapes fitted to the training boxes, and the share of boxes the anchors can match.

Anchors follow torchvision's ``AnchorGenerator``: one size per FPN level and a set of aspect
ratios ``h / w`` shared by the levels; an anchor of size ``s`` and ratio ``r`` is
``s / sqrt(r)`` wide and ``s * sqrt(r)`` tall. Recall is judged on shape alone, as YOLO's
auto-anchor does: a box counts as covered when some anchor, centred on it, overlaps it at IoU
at least ``iou`` (the RPN's foreground threshold is 0.7, its best-match rule keeps boxes below).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.cluster.vq import kmeans2

DEFAULT_ASPECT_RATIOS = (0.5, 1.0, 2.0)


def anchor_shapes(sizes: Sequence[float], aspect_ratios: Sequence[float]) -> np.ndarray:
    """``(len(sizes) * len(aspect_ratios), 2)`` anchor widths and heights."""
    sizes_column = np.asarray(sizes, np.float64)[:, None]
    root = np.sqrt(np.asarray(aspect_ratios, np.float64))[None, :]
    return np.stack([(sizes_column / root).ravel(), (sizes_column * root).ravel()], 1)


def best_anchor_iou(box_wh: np.ndarray, shapes: np.ndarray) -> np.ndarray:
    """For each ``(w, h)`` box, the IoU of the best centre-aligned anchor shape."""
    box_wh = np.asarray(box_wh, np.float64).reshape(-1, 2)
    if not len(box_wh):
        return np.zeros(0)
    inter = np.minimum(box_wh[:, None, 0], shapes[None, :, 0]) * np.minimum(
        box_wh[:, None, 1], shapes[None, :, 1]
    )
    union = box_wh.prod(1)[:, None] + shapes.prod(1)[None, :] - inter
    return (inter / union).max(1)


def anchor_recall(
    box_wh: np.ndarray, sizes: Sequence[float], aspect_ratios: Sequence[float], iou: float = 0.5
) -> float:
    """Share of boxes with an anchor shape at IoU >= ``iou`` (1.0 when there are no boxes)."""
    best = best_anchor_iou(box_wh, anchor_shapes(sizes, aspect_ratios))
    return float((best >= iou).mean()) if len(best) else 1.0


def default_anchor_sizes(num_levels: int) -> list[float]:
    """The sizes torchvision gives the top ``num_levels`` of its five levels (32 ... 512)."""
    return [32.0 * 2**i for i in range(5 - num_levels, 5)]


def configured_anchors(
    anchor_sizes: Sequence[Sequence[float]] | None,
    aspect_ratios: Sequence[float] | None,
    returned_layers: Sequence[int] | None,
) -> tuple[list[float], list[float]]:
    """One size per level and the aspect ratios a Faster R-CNN builds from these settings.

    The levels are the returned ResNet stages (default all four) plus the max-pooled one.
    """
    levels = (len(returned_layers) if returned_layers else 4) + 1
    sizes = [float(s[0]) for s in anchor_sizes] if anchor_sizes else default_anchor_sizes(levels)
    return sizes, [float(r) for r in (aspect_ratios or DEFAULT_ASPECT_RATIOS)]


def _kmeans_1d(values: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Sorted centres of ``k`` clusters (fewer when there are fewer distinct values)."""
    distinct = np.unique(values)
    if len(distinct) <= k:
        return distinct
    centres, _ = kmeans2(values[:, None], k, minit="++", seed=seed)
    return np.sort(np.unique(centres[:, 0]))


def fit_anchors(
    box_wh: np.ndarray, num_levels: int, num_ratios: int = 3, seed: int = 0
) -> tuple[list[float], list[float]]:
    """Anchor sizes (one per level, increasing) and aspect ratios fitted to the boxes.

    k-means on the log of each box's scale ``sqrt(w * h)`` gives the sizes and on the log of its
    aspect ratio ``h / w`` the ratios, so a decade of sizes or shapes weighs the same wherever it
    lies. Deterministic for a seed.

    Args:
        box_wh: ``(N, 2)`` box widths and heights in model input pixels (N > 0).
        num_levels: FPN levels, one anchor size each.
        num_ratios: aspect ratios shared by the levels.
        seed: k-means seed.

    Returns:
        ``(sizes, aspect_ratios)``, rounded to 2 decimals.
    """
    box_wh = np.asarray(box_wh, np.float64).reshape(-1, 2)
    box_wh = box_wh[(box_wh > 0).all(1)]
    if not len(box_wh):
        raise ValueError("no boxes with positive width and height to fit anchors to")
    log_scale = 0.5 * np.log(box_wh).sum(1)
    sizes = np.exp(_kmeans_1d(log_scale, num_levels, seed))
    if len(sizes) < num_levels:  # too few distinct scales: spread an octave per level
        sizes = np.exp(log_scale.mean()) * 2.0 ** (np.arange(num_levels) - (num_levels - 1) / 2)
    ratios = np.exp(_kmeans_1d(np.log(box_wh[:, 1] / box_wh[:, 0]), num_ratios, seed))
    return [round(float(s), 2) for s in sizes], [round(float(r), 2) for r in ratios]


def choose_anchors(
    box_wh: np.ndarray, sizes: Sequence[float], aspect_ratios: Sequence[float], seed: int = 0
) -> tuple[list[float], list[float], float, float]:
    """The anchors a model should use for these boxes, and the recall before and after.

    Fitted aspect ratios on the configured sizes are preferred while they cover nearly as many
    boxes (within 0.02) as fitted sizes too: the configured sizes follow the FPN strides. The
    configured anchors stay when nothing fitted covers more boxes.

    Returns:
        ``(sizes, aspect_ratios, recall of the configured anchors, recall of the chosen ones)``.
    """
    before = anchor_recall(box_wh, sizes, aspect_ratios)
    fitted_sizes, fitted_ratios = fit_anchors(box_wh, len(sizes), len(aspect_ratios), seed)
    ratios_only = anchor_recall(box_wh, sizes, fitted_ratios)
    both = anchor_recall(box_wh, fitted_sizes, fitted_ratios)
    if ratios_only >= both - 0.02:
        chosen = [float(s) for s in sizes], fitted_ratios, ratios_only
    else:
        chosen = fitted_sizes, fitted_ratios, both
    if chosen[2] <= before:
        return [float(s) for s in sizes], [float(r) for r in aspect_ratios], before, before
    return chosen[0], chosen[1], before, chosen[2]
