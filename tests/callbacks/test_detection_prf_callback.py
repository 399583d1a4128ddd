"""DetectionPRF logs precision/recall/F1 at score 0.5 and IoU 0.5, overall and per class."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from neo.callbacks import DetectionPRF


class FakeModule:
    num_classes = 2
    class_names = ("chirp", "tone")
    current_epoch = 0

    def __init__(self):
        self.logged: dict[str, float] = {}

    def log_dict(self, values, **kwargs):
        self.logged.update(values)


def test_counts_matches_and_logs_per_class():
    callback, module = DetectionPRF(), FakeModule()
    trainer = SimpleNamespace(sanity_checking=False)
    targets = [{"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]),
                "labels": torch.tensor([0, 1])}]
    detections = [{"boxes": torch.tensor([[0.0, 0, 10, 11], [50, 50, 60, 60], [20, 20, 30, 30]]),
                   "scores": torch.tensor([0.9, 0.8, 0.4]),  # the tone match scores < 0.5
                   "labels": torch.tensor([0, 1, 1])}]
    callback.on_validation_epoch_start(trainer, module)
    callback.on_validation_batch_end(trainer, module, {"detections": detections},
                                     (None, targets), 0)
    callback.on_validation_epoch_end(trainer, module)
    assert module.logged["val/precision"] == pytest.approx(0.5)
    assert module.logged["val/recall"] == pytest.approx(0.5)
    assert module.logged["val/F1"] == pytest.approx(0.5)
    assert module.logged["val/F1_chirp"] == pytest.approx(1.0)
    assert module.logged["val/F1_tone"] == pytest.approx(0.0)
    callback.on_test_epoch_start(trainer, module)
    callback.on_test_epoch_end(trainer, module)
    assert module.logged["test/F1"] == 0.0


def test_an_image_id_seen_twice_counts_once():
    callback, module = DetectionPRF(), FakeModule()
    trainer = SimpleNamespace(sanity_checking=False)
    box = torch.tensor([[0.0, 0, 10, 10]])
    found = {"boxes": box, "labels": torch.tensor([0]), "image_id": 5}
    missed = {"boxes": box, "labels": torch.tensor([0]), "image_id": 6}
    hit = {"boxes": box, "scores": torch.tensor([0.9]), "labels": torch.tensor([0])}
    nothing = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0),
               "labels": torch.zeros(0, dtype=torch.int64)}
    callback.on_validation_epoch_start(trainer, module)
    callback.on_validation_batch_end(trainer, module, {"detections": [hit, nothing]},
                                     (None, [found, missed]), 0)
    # the last batch repeats image 5, as DistributedSampler pads a rank's share
    callback.on_validation_batch_end(trainer, module, {"detections": [hit]}, (None, [found]), 1)
    callback.on_validation_epoch_end(trainer, module)
    assert module.logged["val/precision"] == 1.0
    assert module.logged["val/recall"] == pytest.approx(0.5)  # tp 1, fn 1 (not tp 2)
