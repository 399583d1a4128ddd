"""Merging several models' detections on one shared spectrogram."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from neo.deploy.contract import DeploySpec
from neo.deploy.runtime import DeployedModel
from neo.inference.merge import Detections, merge_detections
from neo.inference.multi_model import MultiModelDetector
from neo.inference.spec import InferenceSpec


class FixedModel(DeployedModel):
    """Returns the same detections (labels 0..C-1, input pixels) for every image, padded to 4
    rows as the inference contract pads them; an ``export_size`` makes it an exported model."""

    backend = "fixed"

    def __init__(
        self, boxes, scores, labels, names, size, name, export_size=None, resize="stretch"
    ):
        inference = InferenceSpec(
            "neo.tasks.FasterRCNNTask",
            list(range(1, len(names) + 1)),
            names,
            (size, size),
            resize,
            spectrogram={"nfft": 64, "hop": 32, "image_size": size},
        )
        spec = None
        if export_size is not None:
            spec = DeploySpec("onnx", "fp32", inference, (export_size, export_size))
        suffix = ".ckpt" if spec is None else ".onnx"
        super().__init__(
            Path(f"models/{name}{suffix}"), "fp32", inference, spec, torch.device("cpu")
        )
        n = len(scores)
        self.boxes = torch.zeros(1, 4, 4)
        self.boxes[0, :n] = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        self.scores = torch.zeros(1, 4)
        self.scores[0, :n] = torch.tensor(scores)
        self.labels = torch.full((1, 4), -1, dtype=torch.int64)
        self.labels[0, :n] = torch.tensor(labels)
        self.seen: list[tuple[tuple[int, ...], torch.dtype]] = []

    def run(self, images):
        self.seen.append((tuple(images.shape), images.dtype))
        assert images.min() >= 0.0 and images.max() <= 1.0
        return self.boxes, self.scores, self.labels


def test_same_label_overlap_keeps_the_best_and_its_model_id():
    # model 0 works at 32 px (boxes x2 in the shared 64 px image) with names [tone, chirp];
    # model 1 works at 64 px with names [chirp]
    a = FixedModel([[5, 5, 15, 15], [20, 2, 30, 6]], [0.7, 0.6], [0, 1], ["tone", "chirp"], 32, "A")
    b = FixedModel(
        [[11, 11, 31, 31], [41, 5, 61, 13], [40, 40, 60, 60]],
        [0.95, 0.8, 0.3],
        [0, 0, 0],
        ["chirp"],
        64,
        "B",
    )
    detector = MultiModelDetector([a, b], score_threshold=0.5, iou_threshold=0.5)
    merged = detector(torch.rand(64, 64))
    # each at its own size, as the contract's float images
    assert a.seen == [((1, 3, 32, 32), torch.float32)]
    assert b.seen == [((1, 3, 64, 64), torch.float32)]
    found = sorted(
        zip(merged.labels, merged.model_ids.tolist(), merged.boxes.tolist(), merged.scores.tolist())
    )
    # A's tone [10,10,30,30] overlaps B's chirp [11,11,31,31]: different labels, both kept.
    # A's chirp [40,4,60,12] (0.6) overlaps B's chirp [41,5,61,13] (0.8): only B's is kept.
    assert found == [
        ("chirp", 1, [11.0, 11.0, 31.0, 31.0], 0.949999988079071),
        ("chirp", 1, [41.0, 5.0, 61.0, 13.0], 0.800000011920929),
        ("tone", 0, [10.0, 10.0, 30.0, 30.0], 0.699999988079071),
    ]  # B's 0.3 detection is below the score threshold


def test_merge_by_name_across_models():
    first = Detections(
        torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([0.6]), ["psk"], torch.tensor([0])
    )
    second = Detections(
        torch.tensor([[1.0, 1, 10, 10], [0, 0, 10, 10]]),
        torch.tensor([0.8, 0.9]),
        ["psk", "ofdm"],
        torch.tensor([1, 1]),
    )
    merged = merge_detections([first, second], iou_threshold=0.5)
    assert merged.labels == ["ofdm", "psk"]  # highest score first
    assert merged.model_ids.tolist() == [1, 1]
    assert len(merge_detections([Detections.empty()])) == 0


def test_an_exported_model_gets_its_export_size():
    # trained at 32 px, exported at 16 px: fed 16 px images, its boxes scaled x4 to 64 px
    exported = FixedModel([[1, 2, 3, 4]], [0.9], [0], ["tone"], 32, "E", export_size=16)
    merged = MultiModelDetector([exported])(torch.rand(64, 64))
    assert exported.seen == [((1, 3, 16, 16), torch.float32)]
    assert merged.boxes.tolist() == [[4.0, 8.0, 12.0, 16.0]] and merged.labels == ["tone"]


def test_a_model_without_spectrogram_settings_is_refused():
    coco = FixedModel([], [], [], ["car"], 64, "coco", export_size=64, resize="letterbox")
    with pytest.raises(ValueError, match=r"models/coco\.onnx: not a spectrogram detector"):
        MultiModelDetector([coco])
