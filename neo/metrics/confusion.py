"""Detection confusion matrix: which class each object was detected as, or missed.

Per image, detections with ``score >= score_threshold`` are taken in descending score order; each
is matched to the still-unmatched ground-truth box of *any* class with the highest IoU, if that IoU
is ``>= iou_threshold``. A match counts in row (true class), column (detected class); an unmatched
detection in row *background*; an unmatched object in column *background*. Crowd annotations are
left out.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def _xyxy(boxes: list[list[float]]) -> np.ndarray:
    array = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([array[:, :2], array[:, :2] + array[:, 2:]], axis=1)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def confusion_matrix(
    ground_truth: dict,
    detections: list[dict],
    image_ids: list[int] | None = None,
    score_threshold: float = 0.25,
    iou_threshold: float = 0.5,
) -> tuple[np.ndarray, list[int]]:
    """Counts of (true class, detected class) pairs, background last.

    Args:
        ground_truth: COCO instances dict.
        detections: COCO results (``image_id``, ``category_id``, ``bbox`` xywh, ``score``).
        image_ids: the images to count (default: every image of the ground truth).
        score_threshold: detections below this score are ignored.
        iou_threshold: the smallest IoU of a match.

    Returns:
        The (K + 1, K + 1) int64 matrix (rows true, columns detected, index K background) and the
        K category ids in its order (sorted).
    """
    category_ids = sorted(int(c["id"]) for c in ground_truth["categories"])
    index = {c: i for i, c in enumerate(category_ids)}
    background = len(category_ids)
    images = set(int(i) for i in (image_ids or [im["id"] for im in ground_truth["images"]]))
    objects: dict[int, list[dict]] = defaultdict(list)
    for ann in ground_truth["annotations"]:
        if int(ann["image_id"]) in images and not ann.get("iscrowd", 0):
            objects[int(ann["image_id"])].append(ann)
    found: dict[int, list[dict]] = defaultdict(list)
    for det in detections:
        if int(det["image_id"]) in images and float(det["score"]) >= score_threshold:
            found[int(det["image_id"])].append(det)
    matrix = np.zeros((background + 1, background + 1), np.int64)
    for image_id in images:
        truth, dets = objects.get(image_id, []), found.get(image_id, [])
        dets = sorted(dets, key=lambda d: -float(d["score"]))
        true_classes = [index[int(a["category_id"])] for a in truth]
        ious = _iou(_xyxy([d["bbox"] for d in dets]), _xyxy([a["bbox"] for a in truth]))
        matched = np.zeros(len(truth), bool)
        for row, det in enumerate(dets):
            detected = index[int(det["category_id"])]
            candidates = np.where(matched, -1.0, ious[row]) if len(truth) else np.zeros(0)
            best = int(np.argmax(candidates)) if len(candidates) else -1
            if best >= 0 and candidates[best] >= iou_threshold:
                matched[best] = True
                matrix[true_classes[best], detected] += 1
            else:
                matrix[background, detected] += 1
        for k in np.flatnonzero(~matched):
            matrix[true_classes[k], background] += 1
    return matrix, category_ids
