"""What Remix needs of a detector: a name, an input size, and batched detection on uint8 images.

Any object with ``name``, ``input_size`` and ``__call__(images) -> list[Detections]`` is a
detector (:class:`Detector`): profiling, planning and the runtime use nothing else.
:class:`DeployedDetector` adapts every neo model file (checkpoint, ONNX, TensorRT engine,
Torch-TensorRT program, through :func:`neo.deploy.runtime.load_model`); :class:`CallableDetector`
adapts a plain function.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import torch

# boxes (N, 4) float32 xyxy in the detector's input pixels, scores (N,) float32, labels (N,) int64
Detections = tuple[np.ndarray, np.ndarray, np.ndarray]


@runtime_checkable
class Detector(Protocol):
    """A detector as Remix calls it.

    Attributes:
        name: the name used in ``profiles.json`` and ``plans.json``.
        input_size: ``(width, height)`` of the images it takes.
    """

    name: str
    input_size: tuple[int, int]

    def __call__(self, images: np.ndarray) -> list[Detections]:
        """Detections of a batch of uint8 RGB images (B, height, width, 3) at ``input_size``."""
        ...


def empty_detections() -> Detections:
    """No detections."""
    return (
        np.zeros((0, 4), np.float32),
        np.zeros(0, np.float32),
        np.zeros(0, np.int64),
    )


def unpad(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    score_threshold: float | None = None,
) -> list[Detections]:
    """Per image, the rows of the inference contract's padded outputs that hold detections.

    Args:
        boxes: (B, N, 4) boxes; ``scores`` (B, N); ``labels`` (B, N), -1 on padding rows.
        scores: the scores.
        labels: the labels.
        score_threshold: rows scoring below it are dropped too (``None``: none is).

    Returns:
        One ``(boxes float32, scores float32, labels int64)`` per image, as numpy arrays.
    """
    boxes, scores, labels = (t.detach().cpu().numpy() for t in (boxes, scores, labels))
    results = []
    for b, s, lab in zip(boxes, scores, labels):
        keep = lab >= 0
        if score_threshold is not None:
            keep &= s >= score_threshold
        results.append(
            (b[keep].astype(np.float32), s[keep].astype(np.float32), lab[keep].astype(np.int64))
        )
    return results


def fit_to_input(image: np.ndarray, input_size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """``image`` resized to fit inside ``input_size`` keeping its aspect, padded bottom/right.

    Args:
        image: uint8 RGB (H, W, 3).
        input_size: ``(width, height)``.

    Returns:
        The (height, width, 3) canvas and the scale (canvas pixels per image pixel).
    """
    width, height = input_size
    scale = min(width / image.shape[1], height / image.shape[0])
    new_w = max(1, min(width, round(image.shape[1] * scale)))
    new_h = max(1, min(height, round(image.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[:new_h, :new_w] = resized
    return canvas, scale


class CallableDetector:
    """A function ``images (B, H, W, 3) uint8 -> list of (boxes, scores, labels)`` as a detector.

    Args:
        name: detector name.
        input_size: ``(width, height)`` of its input.
        function: the detection function.
    """

    def __init__(
        self,
        name: str,
        input_size: tuple[int, int],
        function: Callable[[np.ndarray], list[Detections]],
    ) -> None:
        self.name = name
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.function = function

    def __call__(self, images: np.ndarray) -> list[Detections]:  # noqa: D102
        return self.function(images)


class DeployedDetector:
    """A neo model file (``.ckpt``, ``.onnx``, ``.engine``, ``.ep``) as a Remix detector.

    Args:
        path: the model file.
        input_size: ``(width, height)`` to run at (default: the model's evaluation size; a fixed
            exported size cannot change).
        device: ``cpu`` or ``cuda``.
        score_threshold: detections below this score are dropped.
        name: detector name (default: ``<file stem>_<width>x<height>``).
    """

    def __init__(
        self,
        path: Path,
        input_size: tuple[int, int] | None = None,
        device: str = "cpu",
        score_threshold: float = 0.05,
        name: str | None = None,
    ) -> None:
        from neo.deploy.runtime import load_model

        self.model = load_model(path, device)
        if input_size is None:
            height, width = self.model.input_size
            input_size = (width, height)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.device = torch.device(device)
        self.score_threshold = score_threshold
        self.name = name or f"{Path(path).stem}_{self.input_size[0]}x{self.input_size[1]}"

    def __call__(self, images: np.ndarray) -> list[Detections]:  # noqa: D102
        batch = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
        batch = batch.to(self.device, torch.float32) / 255.0
        return unpad(*self.model(batch), score_threshold=self.score_threshold)
