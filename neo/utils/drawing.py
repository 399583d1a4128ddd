"""Rendering boxes, labels and scores onto images."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

PREDICTION_COLOURS = [
    (255, 56, 56),
    (255, 157, 151),
    (255, 112, 31),
    (72, 249, 10),
    (0, 194, 255),
    (52, 69, 147),
    (255, 55, 199),
    (146, 204, 23),
    (61, 219, 134),
    (100, 115, 255),
]
GROUND_TRUTH_COLOUR = (255, 255, 255)


def draw_detections(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: Sequence[int],
    names: Sequence[str],
    scores: Sequence[float] | None = None,
    ground_truth: np.ndarray | None = None,
) -> np.ndarray:
    """Draws predicted boxes (coloured, with label and score) and ground truth (white, dashed look).

    Args:
        image: (H, W, 3) uint8 RGB image; not modified.
        boxes: (N, 4) xyxy predicted boxes in the image's pixels.
        labels: training label of each box.
        names: class name of each training label.
        scores: score of each box.
        ground_truth: (M, 4) xyxy ground-truth boxes.

    Returns:
        A new RGB image with the drawings.
    """
    canvas = np.ascontiguousarray(image).copy()
    thickness = max(1, round(min(canvas.shape[:2]) / 400))
    if ground_truth is not None:
        for x0, y0, x1, y1 in np.asarray(ground_truth).round().astype(int):
            cv2.rectangle(canvas, (x0, y0), (x1, y1), GROUND_TRUTH_COLOUR, thickness)
    for i, (x0, y0, x1, y1) in enumerate(np.asarray(boxes).round().astype(int)):
        label = int(labels[i])
        colour = PREDICTION_COLOURS[label % len(PREDICTION_COLOURS)]
        cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, thickness)
        text = names[label] if label < len(names) else str(label)
        if scores is not None:
            text = f"{text} {float(scores[i]):.2f}"
        font_scale = 0.4 * thickness
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        top = max(y0 - th - 4, 0)
        cv2.rectangle(canvas, (x0, top), (x0 + tw + 2, top + th + 4), colour, -1)
        cv2.putText(
            canvas,
            text,
            (x0 + 1, top + th + 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return canvas
