"""Frames to the contract's input, by the same code as neo's evaluation transform.

A camera frame is letterboxed with :class:`neo.data.transforms.EvalTransform` (fit inside, pad
bottom/right with grey 114); a spectrogram detector's image is stretched with area interpolation
(:func:`neo.inference.multi_model.resize_image`'s rule). The result is float32 RGB in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from neo.data.transforms import EvalTransform
from neo.inference.spec import InferenceSpec


@dataclass
class PreparedFrame:
    """One frame as a model input.

    Attributes:
        image: float32 (3, H, W) RGB in [0, 1] at the input size.
        scale: ``(sx, sy)`` with ``input_px = frame_px * scale + offset``.
        offset: ``(dx, dy)`` of the same map.
    """

    image: Tensor
    scale: tuple[float, float]
    offset: tuple[float, float]


class FramePreprocessor:
    """Brings RGB uint8 frames (H, W, 3) to a model's input size as its spec asks.

    Args:
        inference: the model's inference spec (``resize`` mode).
        input_size: ``(height, width)`` of the input, multiples of 32.
    """

    def __init__(self, inference: InferenceSpec, input_size: tuple[int, int]) -> None:
        self.resize = inference.resize
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self._letterbox = EvalTransform(self.input_size) if self.resize == "letterbox" else None

    def __call__(self, frame: np.ndarray) -> PreparedFrame:
        """The frame (H, W, 3) uint8 RGB, or (H, W) grey, as a model input."""
        if frame.ndim == 2:
            frame = np.repeat(frame[:, :, None], 3, axis=2)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(
                f"expected an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}"
            )
        height, width = self.input_size
        if self._letterbox is not None:
            sample = self._letterbox(frame, np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
            canvas, scale, offset = sample.image, sample.scale, sample.offset
        else:
            canvas = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            scale = (width / frame.shape[1], height / frame.shape[0])
            offset = (0.0, 0.0)
        image = torch.from_numpy(np.ascontiguousarray(canvas)).permute(2, 0, 1).float() / 255.0
        return PreparedFrame(image, scale, offset)

    def batch(self, frames: list[np.ndarray]) -> Tensor:
        """Several frames as one float32 (B, 3, H, W) batch."""
        return torch.stack([self(frame).image for frame in frames])
