"""Shared fixtures: tiny COCO datasets written on the fly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.coco import write_coco

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("NEO_CACHE", str(Path(__file__).parent / ".cache"))


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
