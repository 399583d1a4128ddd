"""Validation details (per-class precision–recall) and the plots drawn from them."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np

from neo.callbacks.evaluation_plots import EvaluationPlots
from neo.metrics.coco import CocoEvaluator


def ground_truth():
    return {
        "images": [{"id": i, "width": 200, "height": 100} for i in (1, 2)],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 4, "bbox": [10, 10, 40, 40], "area": 1600,
             "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 4, "bbox": [100, 20, 40, 40], "area": 1600,
             "iscrowd": 0},
            {"id": 3, "image_id": 2, "category_id": 9, "bbox": [10, 10, 30, 30], "area": 900,
             "iscrowd": 0},
        ],
        "categories": [{"id": 4, "name": "disc"}, {"id": 9, "name": "star"}],
    }  # fmt: skip


def evaluated() -> CocoEvaluator:
    evaluator = CocoEvaluator(ground_truth())
    evaluator.update(
        [{"image_id": 1, "category_id": 4, "bbox": [10, 10, 40, 40], "score": 0.9}], [1]
    )
    evaluator.update(
        [{"image_id": 2, "category_id": 4, "bbox": [100, 20, 40, 40], "score": 0.8}], [2]
    )
    evaluator.compute()
    return evaluator


def test_details_hold_per_class_precision_at_iou_half():
    details = evaluated().details
    assert details.category_ids == [4, 9]
    assert details.recall.shape == (101,) and details.precision.shape == (2, 101)
    assert (details.precision[0] == 1).all()  # every disc found, nothing else
    assert (details.precision[1] == 0).all()  # the star never detected
    assert details.image_ids == [1, 2] and len(details.detections) == 2


def test_plots_are_written_after_validation(tmp_path):
    callback = EvaluationPlots(score_threshold=0.5, every_n_epochs=2)
    trainer = SimpleNamespace(
        log_dir=str(tmp_path),
        default_root_dir=str(tmp_path),
        current_epoch=0,
        max_epochs=5,
        sanity_checking=False,
        is_global_zero=True,
        loggers=[],
        global_step=10,
    )
    module = SimpleNamespace(last_evaluation=evaluated().details)
    callback.on_validation_end(trainer, module)
    names = sorted(p.name for p in callback.written)
    assert names == ["confusion_matrix.png", "pr_curves.png"]
    for path in callback.written:
        assert path.parent == tmp_path / "plots" / "epoch_000"
        picture = cv2.imread(str(path))
        assert picture is not None and picture.shape[0] > 200 and picture.std() > 10
    callback.written = []
    trainer.current_epoch = 1  # not every second epoch, not the last: nothing drawn
    callback.on_validation_end(trainer, module)
    assert callback.written == []
    trainer.current_epoch = 4  # the last epoch
    callback.on_validation_end(trainer, module)
    assert len(callback.written) == 2
    assert np.isfinite(module.last_evaluation.precision).all()
