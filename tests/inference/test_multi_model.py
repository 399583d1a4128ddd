"""Merging several models' detections on one shared spectrogram."""

from __future__ import annotations

import pytest
import torch

from neo.inference.loading import LoadedDetector
from neo.inference.merge import Detections, merge_detections
from neo.inference.multi_model import MultiModelDetector
from neo.inference.spec import InferenceSpec


class FixedTask:
    """Returns the same detections (labels 0..C-1, input pixels) for every image, padded to 4
    rows as the inference contract pads them."""

    def __init__(self, boxes, scores, labels):
        n = len(scores)
        self.boxes = torch.zeros(1, 4, 4)
        self.boxes[0, :n] = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        self.scores = torch.zeros(1, 4)
        self.scores[0, :n] = torch.tensor(scores)
        self.labels = torch.full((1, 4), -1, dtype=torch.int64)
        self.labels[0, :n] = torch.tensor(labels)
        self.seen: list[tuple[tuple[int, ...], torch.dtype]] = []

    def __call__(self, images):
        self.seen.append((tuple(images.shape), images.dtype))
        return self.boxes, self.scores, self.labels


def model(task, names, size, name) -> LoadedDetector:
    spec = InferenceSpec(
        "neo.tasks.FasterRCNNTask", list(range(1, len(names) + 1)), names, (size, size),
        "stretch", spectrogram={"nfft": 64, "hop": 32, "image_size": size},
    )
    return LoadedDetector(task, spec, name)


def test_same_label_overlap_keeps_the_best_and_its_model_id():
    # model 0 works at 32 px (boxes x2 in the shared 64 px image) with names [tone, chirp];
    # model 1 works at 64 px with names [chirp]
    a = FixedTask([[5, 5, 15, 15], [20, 2, 30, 6]], [0.7, 0.6], [0, 1])
    b = FixedTask(
        [[11, 11, 31, 31], [41, 5, 61, 13], [40, 40, 60, 60]], [0.95, 0.8, 0.3], [0, 0, 0]
    )
    detector = MultiModelDetector(
        [model(a, ["tone", "chirp"], 32, "A"), model(b, ["chirp"], 64, "B")],
        score_threshold=0.5,
        iou_threshold=0.5,
    )
    merged = detector(torch.rand(64, 64))
    # each at its own size, as uint8 (the task converts to float)
    assert a.seen == [((1, 3, 32, 32), torch.uint8)] and b.seen == [((1, 3, 64, 64), torch.uint8)]
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


def test_a_model_without_spectrogram_settings_is_refused():
    task = FixedTask([], [], [])
    spec = InferenceSpec("neo.tasks.RTDETRTask", [1], ["car"], (64, 64), "letterbox")
    with pytest.raises(ValueError, match="coco: not a spectrogram detector"):
        MultiModelDetector([LoadedDetector(task, spec, "coco")])
