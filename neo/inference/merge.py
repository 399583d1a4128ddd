"""Merging the detections of several models: class-aware NMS by label name, keeping the model id."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.ops import batched_nms


@dataclass
class Detections:
    """Detections of one image in one pixel frame.

    Attributes:
        boxes: (N, 4) float xyxy boxes in pixels.
        scores: (N,) scores.
        labels: label name of each detection.
        model_ids: (N,) int64 index of the model that produced each detection.
    """

    boxes: Tensor
    scores: Tensor
    labels: list[str]
    model_ids: Tensor

    def __len__(self) -> int:
        return len(self.labels)

    @staticmethod
    def empty() -> Detections:
        """No detections."""
        return Detections(torch.zeros(0, 4), torch.zeros(0), [], torch.zeros(0, dtype=torch.int64))


def merge_detections(parts: list[Detections], iou_threshold: float = 0.5) -> Detections:
    """Concatenates the models' detections and suppresses overlaps of the same label name.

    Two detections compete only when their label names are equal (whatever model made them), so
    models trained on different label sets never suppress each other's classes. The survivor of an
    overlapping pair (IoU > ``iou_threshold``) is the higher-scoring one, with its ``model_id``.

    Args:
        parts: detections of each model, all in the same pixel frame.
        iou_threshold: IoU above which the lower-scoring detection of a label is dropped.

    Returns:
        The kept detections, highest score first.
    """
    parts = [p for p in parts if len(p)]
    if not parts:
        return Detections.empty()
    boxes = torch.cat([p.boxes.float().cpu() for p in parts])
    scores = torch.cat([p.scores.float().cpu() for p in parts])
    labels = [name for p in parts for name in p.labels]
    model_ids = torch.cat([p.model_ids.cpu() for p in parts])
    names = sorted(set(labels))
    classes = torch.tensor([names.index(n) for n in labels], dtype=torch.int64)
    keep = batched_nms(boxes, scores, classes, iou_threshold)
    return Detections(
        boxes[keep], scores[keep], [labels[i] for i in keep.tolist()], model_ids[keep]
    )
