"""SAHI's sliced prediction around a Remix detector returns each object once, in frame pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from neo.remix.detector import CallableDetector
from neo.remix.sliced import SahiDetectionModel, sliced_detections

SQUARES = [(30, 40, 20), (150, 70, 16), (290, 150, 24), (400, 20, 12)]  # x, y, side


def _frame() -> np.ndarray:
    frame = np.zeros((200, 480, 3), np.uint8)
    for x, y, side in SQUARES:
        frame[y : y + side, x : x + side] = 255
    return frame


def _white_blobs(images: np.ndarray) -> list:
    """Boxes of the white components of each image (a detector with known answers)."""
    results = []
    for image in images:
        count, _, stats, _ = cv2.connectedComponentsWithStats(
            (image[..., 0] > 128).astype(np.uint8)
        )
        boxes = np.array(
            [[x, y, x + w, y + h] for x, y, w, h, _ in stats[1:count]], np.float32
        ).reshape(-1, 4)
        results.append(
            (boxes, np.full(len(boxes), 0.9, np.float32), np.zeros(len(boxes), np.int64))
        )
    return results


def _calls(detector: CallableDetector) -> list[int]:
    sizes = []
    function = detector.function

    def counting(images):
        sizes.append(len(images))
        return function(images)

    detector.function = counting
    return sizes


@pytest.mark.parametrize("standard", [True, False])
def test_sliced_detections_find_every_object_once_in_frame_pixels(standard):
    detector = CallableDetector("blobs_128x128", (128, 128), _white_blobs)
    batches = _calls(detector)
    model = SahiDetectionModel(detector, confidence_threshold=0.5)

    boxes, scores, labels = sliced_detections(
        model, _frame(), (128, 128), overlap=0.2, batch_size=4, perform_standard_pred=standard
    )

    truth = np.array([[x, y, x + s, y + s] for x, y, s in SQUARES], np.float32)
    assert len(boxes) == len(truth)
    order = np.argsort(boxes[:, 0])
    np.testing.assert_allclose(boxes[order], truth, atol=1.5)
    assert (scores == pytest.approx(0.9)) and (labels == 0).all()
    assert max(batches) == 4  # slices ran in batches
    assert (batches[-1] == 1) == standard  # the whole frame ran last, alone


def test_low_scores_are_dropped_and_empty_frames_give_no_boxes():
    detector = CallableDetector("blobs_128x128", (128, 128), _white_blobs)
    model = SahiDetectionModel(detector, confidence_threshold=0.95)
    boxes, scores, labels = sliced_detections(model, _frame(), (128, 128))
    assert boxes.shape == (0, 4) and scores.shape == (0,) and labels.shape == (0,)
    model = SahiDetectionModel(detector, confidence_threshold=0.5)
    boxes, _, _ = sliced_detections(model, np.zeros((200, 480, 3), np.uint8), (128, 128))
    assert len(boxes) == 0
