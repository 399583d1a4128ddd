"""Torch datasets yielding (image, target) pairs for detection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from neo.data.coco_index import CocoIndex
from neo.data.images import read_image
from neo.data.seeding import SampleKey, keyed
from neo.data.transforms import PAD_VALUE, TransformedSample

Transform = Callable[..., TransformedSample]
Target = dict[str, Any]


def make_target(sample: TransformedSample, image_id: int, orig_size: tuple[int, int]) -> Target:
    """Packs a transformed sample's annotations and its mapping back to original pixels."""
    return {
        "boxes": torch.from_numpy(np.ascontiguousarray(sample.boxes, dtype=np.float32)).reshape(
            -1, 4
        ),
        "labels": torch.from_numpy(np.ascontiguousarray(sample.labels, dtype=np.int64)),
        "image_id": int(image_id),
        "orig_size": torch.tensor(orig_size, dtype=torch.int64),
        "scale": torch.tensor(sample.scale, dtype=torch.float64),
        "offset": torch.tensor(sample.offset, dtype=torch.float64),
    }


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 array to a (3, H, W) uint8 tensor view."""
    return torch.from_numpy(image).permute(2, 0, 1)


class CocoDetectionDataset(Dataset):
    """Images and boxes of one cleaned COCO split.

    An item is an index, or a :class:`~neo.data.seeding.SampleKey` from the training sampler
    whose entropy seeds the augmentation and whose canvas (if any) is passed to the transform.

    Args:
        index: the cleaned split (see :func:`neo.data.coco_index.load_coco_index`).
        transform: maps (image, boxes, labels) to a padded, resized sample.
    """

    def __init__(self, index: CocoIndex, transform: Transform) -> None:
        self.index = index
        self.transform = transform

    def __len__(self) -> int:
        return len(self.index.images)

    def __getitem__(self, item: int | SampleKey) -> tuple[torch.Tensor, Target]:
        canvas = item.canvas if isinstance(item, SampleKey) else None
        with keyed(item) as i:
            record = self.index.images[i]
            image = read_image(
                record.path, (record.height, record.width), str(self.index.annotation_file)
            )
            if canvas is None:
                sample = self.transform(image, record.boxes, record.labels)
            else:
                sample = self.transform(image, record.boxes, record.labels, canvas=canvas)
        target = make_target(sample, record.image_id, (record.height, record.width))
        target["file_name"] = str(record.path)
        return image_to_tensor(sample.image), target


class ImageFolderDataset(Dataset):
    """Unlabelled images (for prediction), numbered 1..N in name order.

    Args:
        paths: image files.
        transform: the evaluation transform.
    """

    def __init__(self, paths: list[Path], transform: Transform) -> None:
        self.paths = list(paths)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Target]:
        image = read_image(self.paths[i])
        empty = np.zeros((0, 4), np.float32)
        sample = self.transform(image, empty, np.zeros((0,), np.int64))
        target = make_target(sample, i + 1, image.shape[:2])
        target["file_name"] = str(self.paths[i])
        return image_to_tensor(sample.image), target


def collate_detection(
    batch: list[tuple[torch.Tensor, Target]],
) -> tuple[torch.Tensor, list[Target]]:
    """Stacks images into one uint8 tensor, padding bottom/right to the largest in the batch."""
    images = [image for image, _ in batch]
    height = max(int(im.shape[1]) for im in images)
    width = max(int(im.shape[2]) for im in images)
    out = torch.full((len(images), 3, height, width), PAD_VALUE, dtype=torch.uint8)
    for i, image in enumerate(images):
        out[i, :, : image.shape[1], : image.shape[2]] = image
    return out, [target for _, target in batch]
