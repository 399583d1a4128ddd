"""Training data for Remix's detectors: tiles of the demo scenes at every zoom a block can have.

At run time Remix resizes blocks of any size, from the whole frame down to a few hundred pixels,
to a detector's input. A detector therefore has to find objects at every scale those resizes
produce: 10-pixel objects near the horizon in a native-resolution block as well as 300-pixel
objects shrunk six times in a whole-frame block. The tiles here are crops of
:func:`neo.remix.scenes.synth_scenes` frames with sides ``frame / zoom`` for each zoom (1 is
the whole frame), placed at random over the ground, and stored at most at ``tile_size``
(larger crops are shrunk, as Remix shrinks blocks). Boxes are clipped to the tile; an object
with less than ``MIN_KEPT`` of its box inside the tile, or smaller than ``MIN_SIDE`` pixels once
stored, is not annotated.

:class:`DemoSceneDataModule` writes a training scene and a validation scene (seeds other than the
Remix demo's evaluation scene) and their tiles into the cache once, and serves them as a
:class:`~neo.data.coco_datamodule.CocoDataModule`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from neo.data.coco_datamodule import CocoDataModule
from neo.data.demo import default_cache_dir
from neo.data.generated import generate_once
from neo.data.problems import DatasetError

FORMAT_VERSION = 1
MIN_KEPT = 0.4  # share of an object's box that must lie inside the tile
MIN_SIDE = 2.0  # pixels, in the stored tile
JPEG_QUALITY = 95
_SPLIT_SEEDS = {"train": 101, "val": 102}  # the Remix demo evaluates on scene seed 0


def tile_windows(
    rng: np.random.Generator,
    frame_size: tuple[int, int],
    horizon: float,
    zooms: Sequence[float],
    tiles_per_zoom: int,
) -> list[tuple[int, int, int, int]]:
    """Crop windows ``(x0, y0, x1, y1)`` of one frame: the whole frame, then random tiles.

    Each zoom ``z`` gives ``tiles_per_zoom`` windows of ``frame / z`` (one for ``z == 1``), whose
    top edge lies between half a tile above the horizon and the bottom of the frame, so every
    tile holds ground where the objects are.

    Args:
        rng: the random generator.
        frame_size: ``(width, height)`` of the frame.
        horizon: the horizon's row.
        zooms: zoom factors, each at least 1.
        tiles_per_zoom: windows per zoom above 1.

    Returns:
        The windows in frame pixels.
    """
    width, height = frame_size
    windows = []
    for zoom in zooms:
        if zoom < 1:
            raise ValueError(f"zoom factors must be at least 1, got {zoom}")
        tile_w, tile_h = round(width / zoom), round(height / zoom)
        for _ in range(1 if zoom == 1 else tiles_per_zoom):
            x0 = int(rng.integers(0, width - tile_w + 1))
            low = int(np.clip(horizon - tile_h / 2, 0, height - tile_h))
            y0 = int(rng.integers(low, height - tile_h + 1))
            windows.append((x0, y0, x0 + tile_w, y0 + tile_h))
    return windows


def tile_annotations(
    boxes: np.ndarray, window: tuple[int, int, int, int], scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """The boxes of one tile: clipped to the window, shifted and scaled to the stored tile.

    Args:
        boxes: (N, 4) ``x, y, w, h`` in frame pixels.
        window: ``(x0, y0, x1, y1)`` of the tile in frame pixels.
        scale: stored tile pixels per frame pixel.

    Returns:
        The kept boxes as (M, 4) ``x, y, w, h`` in tile pixels, and the indices of the kept
        frame boxes.
    """
    if len(boxes) == 0:
        return np.zeros((0, 4), np.float64), np.zeros(0, np.int64)
    x0, y0, x1, y1 = window
    corners = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    clipped = np.clip(corners, [x0, y0, x0, y0], [x1, y1, x1, y1])
    sides = clipped[:, 2:] - clipped[:, :2]
    inside = sides.prod(axis=1) / np.maximum(boxes[:, 2:].prod(axis=1), 1e-9)
    keep = (inside >= MIN_KEPT) & (sides * scale >= MIN_SIDE).all(axis=1)
    shifted = (clipped[keep] - [x0, y0, x0, y0]) * scale
    return np.concatenate(
        [shifted[:, :2], shifted[:, 2:] - shifted[:, :2]], axis=1
    ), np.flatnonzero(keep)


def _write_tiles(folder: Path, scene: Path, params: dict) -> int:
    """Cuts the scene's frames into tiles under ``folder``; returns the number of tiles."""
    coco = json.loads((scene / "annotations.json").read_text(encoding="utf-8"))
    horizon = float(coco["info"]["horizon"])
    by_image: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    max_w, max_h = params["tile_size"]
    rng = np.random.default_rng(params["seed"])
    images, annotations = [], []
    (folder / "images").mkdir()
    for image in sorted(coco["images"], key=lambda im: im["id"]):
        frame = cv2.imread(str(scene / image["file_name"]), cv2.IMREAD_COLOR)
        if frame is None:
            raise DatasetError(f"{scene / image['file_name']}: cannot be read as an image")
        anns = by_image.get(image["id"], [])
        boxes = np.array([a["bbox"] for a in anns], np.float64).reshape(-1, 4)
        frame_size = (image["width"], image["height"])
        windows = tile_windows(rng, frame_size, horizon, params["zooms"], params["tiles_per_zoom"])
        for window in windows:
            x0, y0, x1, y1 = window
            scale = min(1.0, max_w / (x1 - x0), max_h / (y1 - y0))
            size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
            crop = frame[y0:y1, x0:x1]
            if scale < 1:
                crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
            tile_id = len(images) + 1
            file_name = f"{tile_id:06d}.jpg"
            cv2.imwrite(
                str(folder / "images" / file_name), crop, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
            )
            images.append(
                {"id": tile_id, "file_name": file_name, "width": size[0], "height": size[1]}
            )
            kept_boxes, kept = tile_annotations(boxes, window, scale)
            for box, index in zip(kept_boxes, kept):
                w, h = float(box[2]), float(box[3])
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": tile_id,
                        "category_id": anns[index]["category_id"],
                        "bbox": [round(float(v), 2) for v in box],
                        "area": round(w * h, 2),
                        "iscrowd": 0,
                    }
                )
    tiles = {
        "info": {"description": "tiles of a neo synthetic scene", "zooms": params["zooms"]},
        "images": images,
        "annotations": annotations,
        "categories": coco["categories"],
    }
    (folder / "annotations.json").write_text(json.dumps(tiles), encoding="utf-8")
    return len(images)


def write_scene_tiles(
    out: Path,
    scene: Path,
    zooms: Sequence[float] = (1, 2, 3, 4, 6),
    tiles_per_zoom: int = 2,
    tile_size: tuple[int, int] = (640, 360),
    seed: int = 0,
) -> Path:
    """Writes the tiles of a scene (``out/images/*.jpg`` and ``out/annotations.json``), once.

    Args:
        out: output folder; a complete folder made with the same arguments is reused.
        scene: a folder written by :func:`neo.remix.scenes.synth_scenes`.
        zooms: tile sides are ``frame / zoom`` for each zoom (1: the whole frame).
        tiles_per_zoom: random tiles per frame for each zoom above 1.
        tile_size: ``(width, height)`` the largest stored tile fits in.
        seed: seed of the tile positions.

    Returns:
        ``out``.
    """
    params = {
        "version": FORMAT_VERSION,
        "scene": str(Path(scene).resolve()),
        "zooms": [float(z) for z in zooms],
        "tiles_per_zoom": int(tiles_per_zoom),
        "tile_size": [int(v) for v in tile_size],
        "seed": int(seed),
    }
    generate_once(
        Path(out), params, lambda folder: _write_tiles(folder, Path(scene), params), "scene tiles"
    )
    return Path(out)


class DemoSceneDataModule(CocoDataModule):
    """Tiles of generated fixed-camera scenes (the Remix demo's detectors learn on them).

    A training and a validation scene are generated with
    :func:`neo.remix.scenes.synth_scenes` into the cache (nothing is downloaded) and cut into
    tiles at every zoom (see the module's description); later runs reuse them.

    Args:
        root: where the data goes (default: ``<cache>/demo-scene-tiles-<W>x<H>-...``).
        frame_size: ``(width, height)`` of the scenes' frames.
        num_train_frames: frames of the training scene.
        num_val_frames: frames of the validation scene.
        max_objects: most objects in view at once.
        num_classes: shape classes (1 to 4).
        zooms: tile sides are ``frame / zoom`` for each zoom (1: the whole frame).
        tiles_per_zoom: random tiles per frame and zoom above 1.
        tile_size: ``(width, height)`` the largest stored tile fits in.
        seed: seed of the scenes and the tile positions.
        train_sizes: (height, width) canvases for multi-scale training.
        **kwargs: the other arguments of :class:`CocoDataModule` (``eval_size``,
            ``batch_size``, ``num_workers``, ...); the split folders and files are fixed.
    """

    def __init__(
        self,
        root: Path | None = None,
        frame_size: tuple[int, int] = (1920, 1080),
        num_train_frames: int = 40,
        num_val_frames: int = 8,
        max_objects: int = 60,
        num_classes: int = 3,
        zooms: Sequence[float] = (1, 2, 3, 4, 6),
        tiles_per_zoom: int = 2,
        tile_size: tuple[int, int] = (640, 360),
        seed: int = 0,
        train_sizes: list[tuple[int, int]] = [(192, 320)],  # noqa: B006
        **kwargs: Any,
    ) -> None:
        from neo.remix.scenes import synth_scenes

        width, height = (int(v) for v in frame_size)
        if root is None:
            root = default_cache_dir() / (
                f"demo-scene-tiles-{width}x{height}-{num_train_frames}-{num_val_frames}"
                f"-c{num_classes}-s{seed}"
            )
        root = Path(root)
        frames = {"train": num_train_frames, "val": num_val_frames}
        for split, num_frames in frames.items():
            scene = synth_scenes(
                root / f"{split}-scene",
                num_frames=num_frames,
                width=width,
                height=height,
                num_classes=num_classes,
                max_objects=max_objects,
                seed=_SPLIT_SEEDS[split] + 1000 * seed,
                video=False,
            )
            write_scene_tiles(
                root / split,
                scene,
                zooms,
                tiles_per_zoom,
                tile_size,
                seed=_SPLIT_SEEDS[split] + seed,
            )
        kwargs.setdefault("crop_prob", 0.0)
        super().__init__(
            root=root,
            train_images="train/images",
            train_annotations="train/annotations.json",
            val_images="val/images",
            val_annotations="val/annotations.json",
            test_images=None,
            test_annotations=None,
            train_sizes=train_sizes,
            **kwargs,
        )
