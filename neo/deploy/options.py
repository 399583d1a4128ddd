"""Options of ``neo export`` declared without heavy imports (the CLI reads them at start-up)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass
class CalibrationConfig:
    """Where INT8 calibration frames come from and how the model is quantised (``--calib.*``).

    Attributes:
        video: a video whose frames are sampled evenly over its whole length.
        images: a folder of images (sorted by name, sampled evenly).
        num_frames: calibration frames (all of a shorter video or folder, with a warning).
        allow_synthetic: with no video, images or training data, calibrate on random frames
            (with a warning; accuracy suffers).
        method: ``auto`` (ONNX Runtime static quantisation for ONNX models, ModelOpt for
            TensorRT engines), ``ort`` or ``modelopt``.
        algorithm: ONNX Runtime's activation ranges: ``percentile`` (99.999th percentile of
            absolute values) or ``minmax``.
        seed: seed of synthetic frames.
    """

    video: Path | None = None
    images: Path | None = None
    num_frames: int = 256
    allow_synthetic: bool = False
    method: Literal["auto", "ort", "modelopt"] = "auto"
    algorithm: Literal["percentile", "minmax"] = "percentile"
    seed: int = 0

    def resolved_method(self, format: str) -> str:
        """The quantiser for an export ``format`` (``auto``: ModelOpt for TensorRT, else ORT)."""
        if self.method != "auto":
            return self.method
        return "modelopt" if format == "tensorrt" else "ort"
