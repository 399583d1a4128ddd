"""Merging several models' detections on one shared spectrogram."""

from __future__ import annotations

import torch

from neo.inference import Detections, LoadedModel, MultiModelDetector, merge_detections


class FixedTask:
    """Returns the same detections (labels 0..C-1, input pixels) for every image."""

    def __init__(self, boxes, scores, labels):
        self.output = {
            "boxes": torch.tensor(boxes, dtype=torch.float32),
            "scores": torch.tensor(scores),
            "labels": torch.tensor(labels),
        }
        self.seen: list[tuple[int, ...]] = []

    def detect(self, images, targets):
        self.seen.append(tuple(images.shape))
        return [dict(self.output)]


def model(task, names, size, name) -> LoadedModel:
    return LoadedModel(task, names, size, name, {})


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
    assert a.seen == [(1, 3, 32, 32)] and b.seen == [(1, 3, 64, 64)]  # each at its own size
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
