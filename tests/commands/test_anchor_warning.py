"""`neo data check` warns when a Faster R-CNN config's anchors match few training boxes."""

from __future__ import annotations

import numpy as np

from neo.commands.data_check import anchor_warning


class Boxes:
    """A data module reduced to its training box sizes."""

    def __init__(self, box_wh):
        self.box_wh = np.asarray(box_wh, float)

    def training_box_sizes(self):
        return self.box_wh


THIN = Boxes([[200.0, 5.0]] * 40 + [[64.0, 64.0]] * 10)
MODEL = {"class_path": "neo.tasks.FasterRCNNTask", "init_args": {"returned_layers": [2, 3, 4]}}


def test_low_recall_of_the_configured_anchors_is_a_warning_naming_the_fix():
    warning = anchor_warning(THIN, MODEL)
    assert warning.startswith("warning: anchor recall 0.200")
    assert "fit_anchors: true" in warning and "50 training boxes" in warning


def test_no_warning_when_fitted_anchors_cover_the_boxes_or_the_model_is_not_faster_rcnn():
    fitted = {**MODEL, "init_args": {**MODEL["init_args"], "fit_anchors": True}}
    assert anchor_warning(THIN, fitted) is None
    assert anchor_warning(THIN, {"class_path": "neo.tasks.RTDETRTask"}) is None
    assert anchor_warning(Boxes([[64.0, 64.0], [128.0, 128.0]]), None) is None
    assert anchor_warning(object(), MODEL) is None  # a data module without boxes
