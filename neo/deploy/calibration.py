"""INT8 calibration frames: real frames, preprocessed exactly like the model's evaluation inputs.

Frames come from a video (sampled evenly over the whole video, not its first frames), an image
folder (sorted by name, sampled evenly), or the data module's training split, and go through
:class:`neo.deploy.preprocess.FramePreprocessor` (the evaluation letterbox: aspect ratio kept,
padded bottom/right, RGB, [0, 1]), never a square stretch with BGR channels. Random frames are
used only when explicitly allowed, with a warning: a model calibrated on noise loses accuracy.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from neo.deploy.frames import read_image_folder, read_video_frames
from neo.deploy.options import CalibrationConfig
from neo.deploy.preprocess import FramePreprocessor
from neo.inference.spec import InferenceSpec

SYNTHETIC_WARNING = (
    "INT8 calibration on SYNTHETIC random frames: the quantisation ranges will not match real "
    "images and accuracy will suffer; calibrate on a video (--calib.video) or images instead"
)


def synthetic_frames(num_frames: int, size: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """Random RGB uint8 frames of ``size`` (height, width), with a loud warning."""
    warnings.warn(SYNTHETIC_WARNING, UserWarning, stacklevel=2)
    generator = np.random.default_rng(seed)
    return [
        generator.integers(0, 256, (size[0], size[1], 3), dtype=np.uint8) for _ in range(num_frames)
    ]


def calibration_batch(frames: list[np.ndarray], preprocessor: FramePreprocessor) -> Tensor:
    """RGB uint8 frames as the model's float32 (N, 3, H, W) inputs (its evaluation transform)."""
    if not frames:
        raise ValueError("no calibration frames")
    return preprocessor.batch(frames)


def collect_calibration(
    config: CalibrationConfig,
    preprocessor: FramePreprocessor,
    fallback_frames: Callable[[int], list[np.ndarray]] | None = None,
) -> tuple[Tensor, dict[str, Any]]:
    """The calibration batch and a description of where it came from.

    The video wins over the image folder, which wins over the training split; synthetic frames
    are used only when none of them is there and ``config.allow_synthetic`` is set.

    Args:
        config: the calibration options.
        preprocessor: brings a frame to the model's input.
        fallback_frames: ``count -> RGB uint8 frames`` of the training split (e.g. the data
            module's ``calibration_frames``), used when neither video nor images is given.

    Returns:
        float32 (N, 3, H, W) frames and ``{"source", "path", "frames"}`` for the report, with
        ``source`` one of ``video``, ``images``, ``training split``, ``synthetic``.

    Raises:
        FileNotFoundError: a missing video or folder (the message names it).
        ValueError: an unreadable video, a folder without images, ``num_frames`` < 1, or no
            source at all without ``allow_synthetic``.
    """
    if config.num_frames < 1:
        raise ValueError(f"--calib.num_frames {config.num_frames}: must be at least 1")
    path: str | None = None
    if config.video is not None:
        frames, source, path = (
            read_video_frames(config.video, config.num_frames),
            "video",
            str(config.video),
        )
    elif config.images is not None:
        frames, source = read_image_folder(config.images, config.num_frames), "images"
        path = str(config.images)
    elif fallback_frames is not None:
        frames, source = fallback_frames(config.num_frames), "training split"
    elif config.allow_synthetic:
        frames = synthetic_frames(config.num_frames, preprocessor.input_size, config.seed)
        source = "synthetic"
    else:
        raise ValueError(
            "no INT8 calibration frames: give --calib.video or --calib.images (or "
            "--calib.allow_synthetic to calibrate on random frames)"
        )
    batch = calibration_batch(frames, preprocessor)
    return batch, {"source": source, "path": path, "frames": int(batch.shape[0])}


def _letterbox(size: tuple[int, int]) -> FramePreprocessor:
    return FramePreprocessor(InferenceSpec("", [], [], resize="letterbox"), size)


def extract_calibration_frames(
    video_path: str | Path, num_frames: int = 100, target_shape: tuple[int, int] = (640, 640)
) -> list[np.ndarray]:
    """Calibration inputs from a video, sampled evenly over all of it (the seed's API).

    Args:
        video_path: the video.
        num_frames: frames to take (all of a shorter video, with a warning naming the count).
        target_shape: ``(height, width)`` of the model input (the letterbox canvas, multiples
            of 32; note: height first, unlike OpenCV's ``(width, height)``). Each frame is fitted
            inside keeping its aspect ratio and padded bottom/right, as neo evaluates.

    Returns:
        One float32 (1, 3, H, W) RGB array in [0, 1] per frame.

    Raises:
        FileNotFoundError: no such video.
        ValueError: a video OpenCV cannot read.
    """
    preprocessor = _letterbox((int(target_shape[0]), int(target_shape[1])))
    frames = read_video_frames(video_path, num_frames)
    return [preprocessor(frame).image[None].numpy() for frame in frames]


def collect_calibration_data(
    video_path: str | Path | None = None,
    num_frames: int = 100,
    model_shape: tuple[int, int, int, int] = (1, 3, 640, 640),
    allow_synthetic: bool = False,
) -> list[np.ndarray]:
    """Calibration inputs from a video; random ones only when ``allow_synthetic`` (seed's API).

    Args:
        video_path: the video (a missing one is an error unless synthetic frames are allowed).
        num_frames: frames to take.
        model_shape: ``(1, 3, H, W)`` of the model input.
        allow_synthetic: use random frames (with a warning) when there is no video.

    Returns:
        One float32 (1, 3, H, W) RGB array in [0, 1] per frame.

    Raises:
        FileNotFoundError: the video is missing (or none is given) and synthetic frames are not
            allowed.
        ValueError: the video cannot be read.
    """
    size = (int(model_shape[2]), int(model_shape[3]))
    if video_path is not None and (Path(video_path).exists() or not allow_synthetic):
        return extract_calibration_frames(video_path, num_frames, size)
    if not allow_synthetic:
        raise FileNotFoundError(
            "no calibration video given (pass allow_synthetic=True to calibrate on random "
            "frames, at a cost in accuracy)"
        )
    preprocessor = _letterbox(size)
    return [preprocessor(frame).image[None].numpy() for frame in synthetic_frames(num_frames, size)]


__all__ = [
    "CalibrationConfig",
    "calibration_batch",
    "collect_calibration",
    "collect_calibration_data",
    "extract_calibration_frames",
    "read_image_folder",
    "read_video_frames",
    "synthetic_frames",
]
