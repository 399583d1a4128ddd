"""Tiny COCO datasets: solid images with a drawn box and an instances JSON."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np


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
