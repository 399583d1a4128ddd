"""Real frames for benchmarks: sampled evenly from a video or an image folder, as RGB uint8.

The frames are brought to a model's input by :class:`neo.deploy.preprocess.FramePreprocessor`,
so a benchmark sees what the model sees in service. Without a video or folder, random frames at
the input size stand in (named ``random`` in the results).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from neo.deploy.preprocess import FramePreprocessor
from neo.inference.spec import InferenceSpec

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
RANDOM_SOURCE = "random"


def even_indices(total: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(total)`` (all when ``count >= total``)."""
    if count >= total:
        return list(range(total))
    return sorted({int(v + 0.5) for v in np.linspace(0, total - 1, count)})


@contextmanager
def _open_video(path: Path) -> Iterator[cv2.VideoCapture]:
    """An open OpenCV capture of the video, released on exit.

    Raises:
        FileNotFoundError: no such file.
        ValueError: OpenCV cannot open it.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ValueError(f"{path}: not a readable video (OpenCV cannot open it)")
        yield capture
    finally:
        capture.release()


def iter_video_frames(path: Path | str) -> Iterator[np.ndarray]:
    """Every frame of a video in order, as RGB uint8 arrays, decoded one at a time.

    Raises:
        FileNotFoundError: no such file.
        ValueError: OpenCV cannot open it.
    """
    with _open_video(Path(path)) as capture:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def read_video_frames(path: Path | str, num_frames: int) -> list[np.ndarray]:
    """``num_frames`` frames sampled evenly over the whole video, as RGB uint8 arrays.

    A video with fewer frames gives all of them, with a warning saying how many.

    Raises:
        FileNotFoundError: no such file.
        ValueError: OpenCV cannot open or decode it, or ``num_frames`` < 1.
    """
    path = Path(path)
    if num_frames < 1:
        raise ValueError(f"{path}: ask for at least 1 frame (got {num_frames})")
    with _open_video(path) as capture:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if total <= 0:
            frames = []
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                frames.append(frame)
            total = len(frames)
            chosen = [frames[i] for i in even_indices(total, num_frames)]
        else:
            wanted = set(even_indices(total, num_frames))
            chosen = []
            for index in range(max(wanted) + 1 if wanted else 0):
                if not capture.grab():
                    break
                if index in wanted:
                    ok, frame = capture.retrieve()
                    if ok:
                        chosen.append(frame)
    if not chosen:
        raise ValueError(f"{path}: no frame could be decoded")
    if len(chosen) < num_frames:
        warnings.warn(
            f"{path}: {len(chosen)} frames, fewer than the {num_frames} asked for; using all "
            f"{len(chosen)}",
            UserWarning,
            stacklevel=2,
        )
    return [cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) for frame in chosen]


def read_image_folder(folder: Path | str, num_frames: int) -> list[np.ndarray]:
    """Up to ``num_frames`` images of a folder (sorted by name, sampled evenly), RGB uint8.

    Raises:
        FileNotFoundError: no such folder.
        ValueError: no images in it, or one that OpenCV cannot read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    images = []
    for index in even_indices(len(files), num_frames):
        image = cv2.imread(str(files[index]), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{files[index]}: not a readable image")
        images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return images


def source_frames(
    video: Path | str | None, images: Path | str | None, num_frames: int
) -> tuple[list[np.ndarray] | None, str]:
    """Frames from ``video``, else from the ``images`` folder, else none (random stand-ins).

    Returns:
        ``(frames, source name)``; the name is the video's or folder's stem, or ``random``.
    """
    if video is not None:
        return read_video_frames(video, num_frames), Path(video).stem
    if images is not None:
        return read_image_folder(images, num_frames), Path(images).name
    return None, RANDOM_SOURCE


def model_inputs(
    frames: list[np.ndarray] | None,
    inference: InferenceSpec,
    input_size: tuple[int, int],
    num_frames: int,
    seed: int = 0,
) -> Tensor:
    """The frames as the model's float32 (N, 3, H, W) inputs (random ones when ``frames`` is None).

    Args:
        frames: RGB uint8 frames, or ``None``.
        inference: the model's inference spec (letterbox or stretch).
        input_size: ``(height, width)`` of the model input.
        num_frames: how many random frames to make when ``frames`` is None.
        seed: seed of the random frames.
    """
    if frames is not None:
        return FramePreprocessor(inference, input_size).batch(frames)
    generator = torch.Generator().manual_seed(seed)
    height, width = input_size
    return torch.rand(num_frames, 3, height, width, generator=generator)
