"""CocoDataModule: what inference needs to know, and the auto-tune lookup."""

from __future__ import annotations

from neo.data import CocoDataModule
from neo.data.base import DetectionDataModule


def test_inference_preprocessing_is_the_eval_letterbox(tiny_coco):
    dm = CocoDataModule(
        root=tiny_coco,
        train_images="train",
        train_annotations="annotations/instances_train.json",
        val_images="val",
        val_annotations="annotations/instances_val.json",
        eval_size=[64, 128],
    )
    assert dm.inference_preprocessing() == {
        "input_size": (64, 128),
        "resize": "letterbox",
        "spectrogram": None,
    }
    assert [c["id"] for c in dm.categories] == [3, 7]
    assert dm.num_labeled_samples == 1  # the second image is a negative
    assert dm.tuning["num_labeled_samples"] == 1 and dm.tuning["k_folds"] == 0


def test_base_preprocessing_and_declared_once_loader_arguments():
    assert DetectionDataModule().inference_preprocessing() == {
        "input_size": None,
        "resize": "letterbox",
        "spectrogram": None,
    }
    dm = CocoDataModule(batch_size=3, num_workers=0, pin_memory=False)
    assert (dm.batch_size, dm.eval_batch_size, dm.num_workers, dm.pin_memory) == (3, 3, 0, False)
