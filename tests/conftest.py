"""Shared fixtures: tiny COCO datasets written on the fly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("NEO_CACHE", str(Path(__file__).parent / ".cache"))


def write_coco(
    root: Path,
    images: list[dict],
    annotations: list[dict],
    categories: list[dict] | None = None,
    split: str = "train",
) -> Path:
    """Writes images (solid colour with a drawn box) and an instances JSON under ``root``."""
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for image in images:
        path = root / split / image["file_name"]
        if not image.pop("_skip_file", False) and not path.exists():
            pixels = np.full((image["height"], image["width"], 3), 90, np.uint8)
            cv2.rectangle(pixels, (10, 10), (40, 30), (200, 30, 30), -1)
            cv2.imwrite(str(path), pixels)
    categories = categories or [{"id": 3, "name": "disc"}, {"id": 7, "name": "box"}]
    ann_path = root / "annotations" / f"instances_{split}.json"
    ann_path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return ann_path


@pytest.fixture
def tiny_coco(tmp_path: Path) -> Path:
    """Two 64x112 images, one with two boxes, one without annotations."""
    images = [
        {"id": 1, "file_name": "a.jpg", "width": 112, "height": 64},
        {"id": 2, "file_name": "b.jpg", "width": 112, "height": 64},
    ]
    annotations = [
        {
            "id": 1,
            "image_id": 1,
            "category_id": 3,
            "bbox": [10, 10, 30, 20],
            "area": 600,
            "iscrowd": 0,
        },
        {
            "id": 2,
            "image_id": 1,
            "category_id": 7,
            "bbox": [50, 20, 20, 20],
            "area": 400,
            "iscrowd": 0,
        },
    ]
    write_coco(tmp_path, images, annotations, split="train")
    write_coco(tmp_path, [dict(i) for i in images], annotations, split="val")
    return tmp_path
