"""Image files: decoding with cv2 and the checks that go with it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from neo.data.problems import DatasetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

cv2.setNumThreads(1)


class CorruptImageError(DatasetError):
    """An image file that cannot be decoded."""


class TruncatedImageError(CorruptImageError):
    """A JPEG file that ends early: cv2 would decode it with its missing part grey."""


class ImageSizeError(DatasetError):
    """An image whose size differs from the one its annotation file records."""


def read_image(
    path: Path, expected_size: tuple[int, int] | None = None, source: str = ""
) -> np.ndarray:
    """Decodes an image file to an RGB uint8 array.

    Args:
        path: image file.
        expected_size: (height, width) the annotation file records, checked when given.
        source: annotation file that lists the image, named in size-mismatch errors.

    Returns:
        (H, W, 3) uint8 RGB array.

    Raises:
        DatasetError: when the file is missing, cannot be decoded (or is a truncated JPEG), or has
            another size.
    """
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        if not Path(path).is_file():
            raise DatasetError(f"{path}: image file not found")
        raise CorruptImageError(f"{path}: cannot decode image (corrupt or not an image file)")
    if is_truncated_jpeg(path):
        raise TruncatedImageError(
            f"{path}: truncated JPEG (the file ends before its end-of-image marker); "
            "`neo data check` lists every such file"
        )
    if expected_size is not None and image.shape[:2] != tuple(expected_size):
        h, w = image.shape[:2]
        eh, ew = expected_size
        listed = f" in {source}" if source else ""
        raise ImageSizeError(f"{path}: image is {w}x{h} but recorded as {ew}x{eh}{listed}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)


def is_truncated_jpeg(path: Path) -> bool:
    """Whether a JPEG file lacks its end-of-image marker (cv2 decodes such files silently)."""
    if Path(path).suffix.lower() not in (".jpg", ".jpeg"):
        return False
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(size - 16, 0))
        tail = f.read()
    return b"\xff\xd9" not in tail


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: image folder not found")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
