"""A tiny contract-following ONNX detector with its sidecar, and a tiny video, for fast tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from neo.deploy.contract import DeploySpec, write_sidecar
from neo.inference.spec import InferenceSpec

SPEC = InferenceSpec("neo.tasks.RTDETRTask", [1, 3], ["a", "b"], (32, 64))


class TinyDetector(nn.Module):
    """Five boxes per image whose scores depend on the image (a convolution and a mean)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 5, 3, padding=1)

    def forward(self, images: torch.Tensor):
        scores = torch.sigmoid(self.conv(images).mean(dim=(2, 3)))
        boxes = torch.stack([scores * 10, scores * 5, scores * 20 + 1, scores * 15 + 1], dim=-1)
        labels = (scores > 0.5).long()
        return boxes, scores, labels


def tiny_onnx(path: Path, batch: int | None = None) -> Path:
    """Writes the detector as ONNX (dynamic batch unless ``batch``) with its sidecar."""
    axes = None if batch else {"images": {0: "batch"}, "boxes": {0: "batch"}}
    torch.onnx.export(
        TinyDetector().eval(), (torch.rand(batch or 2, 3, 32, 64),), str(path),
        input_names=["images"], output_names=["boxes", "scores", "labels"],
        opset_version=17, dynamo=False, dynamic_axes=axes,
    )
    spec = DeploySpec("onnx", "fp32", SPEC, (32, 64), batch=batch or 1,
                      dynamic_batch=batch is None)
    write_sidecar(path, spec)
    return path


def tiny_video(path: Path, frames: int = 10, size: tuple[int, int] = (64, 112)) -> Path:
    """An MJPEG clip whose frame ``i`` is uniformly red ``20 * i`` (BGR on disk)."""
    height, width = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (width, height))
    for i in range(frames):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:, :, 2] = 20 * i
        writer.write(frame)
    writer.release()
    return path
