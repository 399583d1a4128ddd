"""Where the objects of a scene are and how big: Remix's historical object distribution.

The boxes come from historical frames of the scene labelled by an accurate ("oracle") detector,
at the view's resolution. An object belongs to the block that holds its box centre, so the
shares of the blocks of a tiling sum to 1.

A block of ``bw x bh`` pixels run by a detector of input ``iw x ih`` is resized to fit the input
keeping its aspect, by ``scale = min(iw / bw, ih / bh)``; each object's area is multiplied by
``scale²`` before it is put in a size bin (:mod:`neo.remix.bins`). A large block shrinks its
objects into smaller bins; a tile near the input size keeps them as they are. At run time a block
is cropped with a margin (:func:`padded`, ``PADDING`` per side) so that the objects it owns are
seen whole; an object larger than that crop is cut, and planning counts it as missed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

import numpy as np

from neo.data.problems import DatasetError
from neo.remix.bins import NUM_BINS, size_histogram
from neo.remix.files import read_json_file

PADDING = 0.1  # growth of a block's crop per side, as a share of its size (run time, planning)


class Rectangle(Protocol):
    """Anything with integer pixel edges ``x1, y1`` (inclusive) and ``x2, y2`` (exclusive)."""

    x1: int
    y1: int
    x2: int
    y2: int


def padded(
    block: Rectangle, view: tuple[int, int], padding: float = PADDING, *, pixels: int | None = None
) -> tuple[int, int, int, int]:
    """The crop rectangle of a block: the block grown on every side, clipped to the view.

    Args:
        block: the block.
        view: ``(width, height)`` of the frame.
        padding: growth per side as a fraction of the block's width (left/right) and height
            (top/bottom), rounded up to whole pixels.
        pixels: growth per side in pixels; overrides ``padding`` when given.

    Returns:
        ``(x1, y1, x2, y2)`` in frame pixels, ``x2``/``y2`` exclusive.
    """
    if pixels is not None:
        if pixels < 0:
            raise ValueError(f"padding must be >= 0 pixels, got {pixels}")
        pad_x = pad_y = int(pixels)
    else:
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        pad_x = math.ceil(padding * (block.x2 - block.x1))
        pad_y = math.ceil(padding * (block.y2 - block.y1))
    width, height = view
    return (
        max(0, block.x1 - pad_x),
        max(0, block.y1 - pad_y),
        min(width, block.x2 + pad_x),
        min(height, block.y2 + pad_y),
    )


class ObjectDistribution:
    """The objects of the historical frames: their centres and areas, asked per block.

    Args:
        boxes: ``(N, 4)`` boxes ``x, y, w, h`` in view pixels, over all historical frames.
        num_frames: how many frames the boxes come from.
        view: ``(width, height)`` of the view.
    """

    def __init__(self, boxes: np.ndarray, num_frames: int, view: tuple[int, int]) -> None:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if not np.isfinite(boxes).all():
            raise ValueError("object boxes must be finite numbers")
        width, height = view
        self.view = (int(width), int(height))
        self.num_frames = int(num_frames)
        self.areas = np.clip(boxes[:, 2], 0, None) * np.clip(boxes[:, 3], 0, None)
        self.corners = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
        # centres clamped into the view so that every object belongs to exactly one block
        self.centres_x = np.clip(boxes[:, 0] + boxes[:, 2] / 2, 0, np.nextafter(width, 0))
        self.centres_y = np.clip(boxes[:, 1] + boxes[:, 3] / 2, 0, np.nextafter(height, 0))

    def __len__(self) -> int:
        return len(self.areas)

    def objects_in(self, block: Rectangle) -> np.ndarray:
        """Which objects belong to the block (their box centre lies inside it).

        Args:
            block: the rectangle.

        Returns:
            Boolean mask of shape ``(N,)``.
        """
        return (
            (self.centres_x >= block.x1)
            & (self.centres_x < block.x2)
            & (self.centres_y >= block.y1)
            & (self.centres_y < block.y2)
        )

    def whole_in(self, block: Rectangle, padding: float = PADDING) -> np.ndarray:
        """Which objects of the block lie whole inside its padded crop (the others are cut).

        Args:
            block: the rectangle.
            padding: the crop's growth per side, as at run time (:func:`padded`).

        Returns:
            Boolean mask of shape ``(N,)``: the block's objects that the crop holds entirely.
        """
        x1, y1, x2, y2 = padded(block, self.view, padding)
        corners = self.corners
        inside = (
            (corners[:, 0] >= x1 - 0.5)
            & (corners[:, 1] >= y1 - 0.5)
            & (corners[:, 2] <= x2 + 0.5)
            & (corners[:, 3] <= y2 + 0.5)
        )
        return self.objects_in(block) & inside

    def share(self, block: Rectangle) -> float:
        """The fraction of all objects that belong to the block (0 when there are none).

        Args:
            block: the rectangle.

        Returns:
            A number in ``[0, 1]``.
        """
        if len(self) == 0:
            return 0.0
        return float(self.objects_in(block).sum() / len(self))

    def histogram(self, block: Rectangle, scale: float, padding: float | None = None) -> np.ndarray:
        """The size distribution of the block's objects once the block is resized by ``scale``.

        Args:
            block: the rectangle.
            scale: the resize factor of the block's sides (detector input side / block side,
                the smaller of the width and height ratios).
            padding: with a padding, objects that do not lie whole in the padded crop are left
                out of the bins (a detector cannot find them whole); they still count in the
                total, so the fractions then sum to less than 1.

        Returns:
            Fractions per size bin, shape ``(12,)``, summing to 1 when every object counts (all
            zeros when the block holds no objects).
        """
        members = self.objects_in(block)
        total = int(members.sum())
        if total == 0:
            return np.zeros(NUM_BINS)
        if padding is not None:
            members = self.whole_in(block, padding)
        return size_histogram(self.areas[members] * scale**2) / total


def _coco_boxes(path: Path, data: object, view: tuple[int, int]) -> tuple[np.ndarray, int]:
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise DatasetError(f"{path}: not a COCO file (expected 'images' and 'annotations')")
    width, height = view
    for image in data["images"]:
        size = (image.get("width"), image.get("height"))
        if size != (width, height):
            raise DatasetError(
                f"{path}: image {image.get('id')!r} is {size[0]}x{size[1]}, not the {width}x"
                f"{height} view; label the historical frames at the view's resolution"
            )
    boxes = []
    for annotation in data["annotations"]:
        bbox = annotation.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise DatasetError(
                f"{path}: annotation {annotation.get('id')!r} has no [x, y, w, h] bbox"
            )
        boxes.append(bbox)
    try:
        array = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    except (TypeError, ValueError):
        raise DatasetError(f"{path}: bbox values must be numbers") from None
    if not np.isfinite(array).all():
        raise DatasetError(f"{path}: bbox values must be finite numbers")
    return array, len(data["images"])


def from_coco(path: Path, view: tuple[int, int]) -> ObjectDistribution:
    """Reads the historical frames' boxes from a COCO file (``iscrowd`` is ignored).

    Args:
        path: COCO JSON whose images are the historical frames at the view's resolution.
        view: ``(width, height)`` of the view.

    Returns:
        The object distribution.

    Raises:
        FileNotFoundError: no such file.
        DatasetError: not a COCO file, a bad bbox, or an image whose size is not the view.
    """
    path = Path(path)
    data = read_json_file(path)
    boxes, num_frames = _coco_boxes(path, data, (int(view[0]), int(view[1])))
    return ObjectDistribution(boxes, num_frames, view)
