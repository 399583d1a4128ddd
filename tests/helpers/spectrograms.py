"""Tiny spectrogram datasets in the ``neo data spectrogram`` layout, written on the fly."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np


def write_chunk(
    folder: Path, stem: str, boxes: list[dict], size: int = 64, image: bool = True
) -> Path:
    """One grayscale PNG with bright rectangles at ``boxes`` and its ``_bboxes.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    if image:
        pixels = np.full((size, size), 20, np.uint8)
        for b in boxes:
            x0, y0 = max(0, int(b["x_min"])), max(0, int(b["y_min"]))
            pixels[y0 : int(b["y_max"]), x0 : int(b["x_max"])] = 230 if b["label"] == "a" else 140
        cv2.imwrite(str(folder / f"{stem}.png"), pixels)
    record = {"image": f"{stem}.png", "width": size, "height": size, "bboxes": boxes}
    path = folder / f"{stem}_bboxes.json"
    path.write_text(json.dumps(record))
    return path


def write_dataset(
    root: Path, recordings: int = 4, chunks: int = 2, size: int = 64, manifest: bool = True
) -> Path:
    """``root/20240101_000000/`` with ``recordings`` × ``chunks`` images, labels ``a`` and ``b``."""
    run = root / "20240101_000000"
    rng = np.random.default_rng(0)
    entries = []
    for r in range(recordings):
        for c in range(chunks):
            stem = f"rec{r}_{c:03d}"
            x = float(rng.integers(2, size // 2))
            boxes = [
                {"label": "a", "x_min": x, "y_min": 4.0, "x_max": x + size / 4, "y_max": 16.0},
                {
                    "label": "b",
                    "x_min": 8.0,
                    "y_min": size / 2,
                    "x_max": size / 2,
                    "y_max": size / 2 + 12,
                },
            ]
            write_chunk(run, stem, boxes, size)
            entries.append({"recording": f"rec{r}", "image": f"{stem}.png", "chunk": c})
    if manifest:
        (run / "manifest.json").write_text(
            json.dumps({"settings": {"nfft": 64, "hop": 32, "image_size": size}, "chunks": entries})
        )
    return root
