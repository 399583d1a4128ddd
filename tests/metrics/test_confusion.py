"""The detection confusion matrix: matches across classes, misses and false alarms."""

from __future__ import annotations

import numpy as np

from neo.metrics.confusion import confusion_matrix


def coco(annotations):
    return {
        "images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
        "annotations": [
            {"id": i + 1, "image_id": im, "category_id": c, "bbox": b, "iscrowd": crowd}
            for i, (im, c, b, crowd) in enumerate(annotations)
        ],
        "categories": [{"id": 7, "name": "car"}, {"id": 3, "name": "person"}],
    }


def det(image_id, category_id, bbox, score):
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": score}


def test_rows_are_true_classes_columns_detections_background_last():
    truth = coco(
        [
            (1, 3, [0, 0, 10, 10], 0),  # person, found as person
            (1, 7, [50, 50, 20, 20], 0),  # car, found as person
            (2, 7, [0, 0, 30, 30], 0),  # car, missed
            (2, 3, [60, 60, 10, 10], 1),  # crowd: ignored
        ]
    )
    detections = [
        det(1, 3, [0, 0, 10, 10], 0.9),
        det(1, 3, [51, 51, 20, 20], 0.8),
        det(1, 7, [0, 0, 10, 10], 0.7),  # duplicate of the matched person: a false alarm
        det(2, 7, [80, 0, 10, 10], 0.6),  # nothing there: a false alarm
        det(2, 7, [0, 0, 30, 30], 0.1),  # below the score threshold
    ]
    matrix, ids = confusion_matrix(truth, detections, score_threshold=0.25)
    assert ids == [3, 7]  # person, car
    expected = np.array(
        [
            [1, 0, 0],  # person: detected as person
            [1, 0, 1],  # car: once as person, once missed
            [0, 2, 0],  # background: two false cars
        ]
    )
    np.testing.assert_array_equal(matrix, expected)
    matrix, _ = confusion_matrix(truth, detections, score_threshold=0.05)
    assert matrix[1, 1] == 1 and matrix[1, 2] == 0  # the low-score car now finds its object
    matrix, _ = confusion_matrix(truth, detections, image_ids=[2])
    assert matrix.sum() == 2  # image 2 only: the missed car and one false alarm
