"""Built-in demo data: a deterministic synthetic COCO-format detection dataset of coloured shapes.

Each image has a textured background (smooth colour noise, a gradient, grain and thin grey lines
that are not objects) and several filled, outlined shapes. The classes are shape families with
overlapping colour families (hue jitter wider than half the spacing between class hues), so
colour alone does not separate them. Later shapes occlude earlier ones.

Annotation conventions (those of COCO, whose boxes and areas come from visible masks):

- ``area`` is the number of visible pixels of the object;
- ``bbox`` is the tight ``[x, y, w, h]`` box around the visible pixels, in pixel-edge coordinates
  (a pixel at column ``c`` spans ``[c, c + 1)``), so it always lies inside the image;
- an object with less than ``min_visible`` of its drawn pixels visible is not annotated (its
  fragment stays in the image, as heavily occluded objects in real datasets);
- category ids are not contiguous (1, 3, 7, 12), so label mapping code is exercised.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from neo.data.generated import generate_once

SHAPES: tuple[str, ...] = ("disc", "box", "triangle", "star")
CATEGORY_IDS: tuple[int, ...] = (1, 3, 7, 12)
FORMAT_VERSION = 1
_SPLIT_SEED = {"train": 0, "val": 1}
_HUE_OFFSET = 5.0  # OpenCV hue of class 0 (reddish discs)


def _hsv_to_bgr(hue: float, sat: float, val: float) -> np.ndarray:
    """Convert one OpenCV HSV colour (hue in [0, 180)) to float BGR in [0, 255]."""
    pixel = np.array([[[hue % 180, sat, val]]], dtype=np.uint8)
    return cv2.cvtColor(pixel, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _background(rng: np.random.Generator, height: int, width: int, clutter: int) -> np.ndarray:
    """Smooth low-saturation colour noise, a linear gradient, grain and thin grey lines."""
    grid_h, grid_w = 4 + int(rng.integers(0, 5)), 6 + int(rng.integers(0, 8))
    coarse = rng.uniform(60, 200, size=(grid_h, grid_w, 3))
    grey = coarse.mean(axis=2, keepdims=True)
    coarse = grey + 0.45 * (coarse - grey)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (
        np.cos(angle) * np.linspace(-1, 1, grid_w)[None, :]
        + np.sin(angle) * np.linspace(-1, 1, grid_h)[:, None]
    )
    coarse += (rng.uniform(10, 40) * ramp)[..., None]
    coarse = np.clip(coarse, 0, 255).astype(np.uint8)
    img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(int(rng.integers(clutter // 2, clutter + 1))):
        level = int(rng.integers(30, 230))
        colour = tuple(int(np.clip(level + t, 0, 255)) for t in rng.integers(-15, 16, size=3))
        steps = rng.normal(size=(int(rng.integers(1, 4)), 2)) * rng.uniform(0.01, 0.06) * width
        start = rng.uniform((0, 0), (width, height))
        points = np.concatenate([start[None], start + np.cumsum(steps, axis=0)])
        thickness = int(rng.integers(1, max(2, height // 270)))
        cv2.polylines(img, [points.astype(np.int32)], False, colour, thickness, cv2.LINE_AA)
    grain = rng.integers(0, 13, size=(height, width), dtype=np.uint8)
    img = cv2.add(img, cv2.merge([grain, grain, grain]))
    return cv2.subtract(img, np.full_like(img, 6))


def _shape_polygon(rng: np.random.Generator, shape: str, w: float, h: float) -> np.ndarray:
    """Polygon vertices (N x 2, float) of one shape of nominal size w x h centred at the origin."""
    if shape == "disc":
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        pts = np.stack([np.cos(t) * w / 2, np.sin(t) * h / 2], axis=1)
    elif shape == "box":
        pts = np.array([[-w, -h], [w, -h], [w, h], [-w, h]], dtype=np.float64) / 2
    elif shape == "triangle":
        apex = rng.uniform(-0.3, 0.3) * w
        pts = np.array([[apex, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    elif shape == "star":
        t = np.linspace(-np.pi / 2, 1.5 * np.pi, 10, endpoint=False)
        radius = np.where(np.arange(10) % 2 == 0, 1.0, rng.uniform(0.38, 0.5))
        pts = np.stack([np.cos(t) * radius * w / 2, np.sin(t) * radius * h / 2], axis=1)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    angle = rng.uniform(-np.pi, np.pi) if shape != "box" else rng.uniform(-0.5, 0.5)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return pts @ rot.T


def _overlap(a: Sequence[int], b: Sequence[int]) -> float:
    """Intersection over the smaller of two [x0, y0, x1, y1] boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / smaller


def render_image(
    rng: np.random.Generator,
    height: int,
    width: int,
    num_classes: int,
    objects_per_image: tuple[int, int],
    size_range: tuple[float, float],
    min_visible: float,
    clutter: int,
) -> tuple[np.ndarray, list[dict]]:
    """Render one image and its annotations.

    Args:
        rng: Source of randomness (the image is a pure function of its state).
        height: Image height in pixels.
        width: Image width in pixels.
        num_classes: Number of shape classes used (first ``num_classes`` of :data:`SHAPES`).
        objects_per_image: Inclusive range of the number of shapes drawn.
        size_range: Range of an object's nominal side (square root of its width times height)
            as a fraction of the image height; sampled log-uniformly.
        min_visible: Minimum visible fraction of an object's drawn pixels to annotate it.
        clutter: Maximum number of background lines.

    Returns:
        The BGR uint8 image and annotations with ``category_id``, ``bbox`` and ``area``.
    """
    img = _background(rng, height, width, clutter)
    instances = np.zeros((height, width), dtype=np.uint16)
    spacing = 180 / num_classes
    placed: list[tuple[int, list[int], int]] = []  # (class index, extent x0 y0 x1 y1, pixels)
    num_objects = int(rng.integers(objects_per_image[0], objects_per_image[1] + 1))
    log_lo, log_hi = np.log(size_range[0] * height), np.log(size_range[1] * height)
    for _ in range(num_objects):
        cls = int(rng.integers(0, num_classes))
        side = float(np.exp(rng.uniform(log_lo, log_hi)))
        aspect = float(np.exp(rng.uniform(-0.45, 0.45)))
        pts = _shape_polygon(rng, SHAPES[cls], side * np.sqrt(aspect), side / np.sqrt(aspect))
        thickness = max(1, round(side / 22))
        lo = np.floor(pts.min(axis=0)).astype(int) - thickness
        size = np.ceil(pts.max(axis=0)).astype(int) + thickness + 1 - lo
        if size[0] >= width or size[1] >= height:
            continue
        for _attempt in range(12):
            x0, y0 = int(rng.integers(0, width - size[0])), int(rng.integers(0, height - size[1]))
            extent = [x0, y0, x0 + int(size[0]), y0 + int(size[1])]
            if all(_overlap(extent, other) < 0.5 for _, other, _ in placed):
                break
        else:
            continue
        local = np.round((pts - lo) * 16).astype(np.int32)
        fill = np.zeros((size[1], size[0]), dtype=np.uint8)
        cv2.fillPoly(fill, [local], 1, cv2.LINE_8, shift=4)
        edge = np.zeros_like(fill)
        cv2.polylines(edge, [local], True, 1, thickness, cv2.LINE_8, shift=4)
        mask = (fill | edge).astype(bool)

        hue = _HUE_OFFSET + cls * spacing + rng.uniform(-0.6, 0.6) * spacing
        colour = _hsv_to_bgr(hue, rng.uniform(150, 255), rng.uniform(150, 255))
        direction = rng.normal(size=2)
        direction /= np.linalg.norm(direction) + 1e-9
        yy, xx = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float32)
        ramp = (xx - size[0] / 2) * direction[0] + (yy - size[1] / 2) * direction[1]
        shade = 1.0 + 0.25 * ramp / (0.5 * max(size)) * rng.uniform(0.5, 1.0)
        body = np.clip(shade[..., None] * colour, 0, 255)
        outline = colour * rng.uniform(0.25, 0.5)
        patch = np.where(edge[..., None].astype(bool), outline, body).astype(np.uint8)

        roi = (slice(y0, y0 + size[1]), slice(x0, x0 + size[0]))
        img[roi][mask] = patch[mask]
        instances[roi][mask] = len(placed) + 1
        placed.append((cls, extent, int(mask.sum())))

    img = cv2.GaussianBlur(img, (3, 3), 0)
    visible = np.bincount(instances.ravel(), minlength=len(placed) + 1)
    annotations = []
    for index, (cls, extent, drawn) in enumerate(placed, start=1):
        if visible[index] < min_visible * drawn:
            continue
        ys, xs = np.nonzero(instances[extent[1] : extent[3], extent[0] : extent[2]] == index)
        bx, by = extent[0] + int(xs.min()), extent[1] + int(ys.min())
        bw, bh = int(xs.max()) - int(xs.min()) + 1, int(ys.max()) - int(ys.min()) + 1
        annotations.append(
            {
                "category_id": CATEGORY_IDS[cls],
                "bbox": [bx, by, bw, bh],
                "area": int(visible[index]),
            }
        )
    return img, annotations


def _write_split(directory: Path, split: str, num_images: int, seed: int, params: dict) -> dict:
    """Render one split's images into ``directory/split`` and return its COCO dict."""
    (directory / split).mkdir(parents=True)
    height, width = params["height"], params["width"]
    images, annotations = [], []
    for index in range(num_images):
        rng = np.random.default_rng([seed, _SPLIT_SEED[split], index])
        img, anns = render_image(
            rng,
            height,
            width,
            params["num_classes"],
            tuple(params["objects_per_image"]),
            tuple(params["size_range"]),
            params["min_visible"],
            params["clutter"],
        )
        file_name = f"{index + 1:06d}.jpg"
        ok, encoded = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, params["jpeg_quality"]])
        if not ok:
            raise RuntimeError(f"{directory / split / file_name}: JPEG encoding failed")
        (directory / split / file_name).write_bytes(encoded.tobytes())
        image_id = index + 1
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        for ann in anns:
            annotations.append(
                {"id": len(annotations) + 1, "image_id": image_id, **ann, "iscrowd": 0}
            )
    categories = [
        {"id": CATEGORY_IDS[k], "name": SHAPES[k], "supercategory": "shape"}
        for k in range(params["num_classes"])
    ]
    return {
        "info": {"description": f"neo synthetic shapes ({split})", "version": FORMAT_VERSION},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def synthesize_coco(
    out: Path,
    num_train: int = 64,
    num_val: int = 16,
    height: int = 1080,
    width: int = 1920,
    num_classes: int = 3,
    seed: int = 0,
    objects_per_image: tuple[int, int] = (4, 12),
    size_range: tuple[float, float] = (0.02, 0.3),
    min_visible: float = 0.3,
    clutter: int = 24,
    jpeg_quality: int = 90,
) -> Path:
    """Write a deterministic synthetic COCO dataset, or reuse it if it is already there.

    Layout: ``out/train/000001.jpg ...``, ``out/val/...``, ``out/annotations/instances_train.json``
    and ``instances_val.json``, and ``out/.complete`` holding the generation parameters. The
    dataset is built in a temporary sibling directory and renamed into place, so processes
    calling this at the same time (DDP ranks) all return the same complete directory.

    Args:
        out: Dataset directory.
        num_train: Number of training images.
        num_val: Number of validation images.
        height: Image height in pixels.
        width: Image width in pixels.
        num_classes: Number of shape classes, 1 to 4 (disc, box, triangle, star).
        seed: Random seed; the same parameters give byte-identical files.
        objects_per_image: Inclusive range of shapes drawn per image (before occlusion drops).
        size_range: Range of an object's side (square root of its box area) as a fraction of
            the image height, sampled log-uniformly. The default spans COCO small, medium and
            large objects at 1080p.
        min_visible: Objects with a smaller visible fraction are not annotated.
        clutter: Maximum number of background lines per image.
        jpeg_quality: JPEG quality of the written images.

    Returns:
        ``out``.

    Raises:
        ValueError: Invalid parameters.
        DatasetError: ``out`` exists but is not this dataset.
    """
    out = Path(out)
    if not 1 <= num_classes <= len(SHAPES):
        raise ValueError(f"num_classes must be between 1 and {len(SHAPES)}, got {num_classes}")
    if num_train < 0 or num_val < 0 or height < 16 or width < 16:
        raise ValueError("image counts must be >= 0 and height, width >= 16")
    if not 0 < size_range[0] <= size_range[1] < 1:
        raise ValueError(f"size_range must satisfy 0 < low <= high < 1, got {size_range}")
    if not 0 <= objects_per_image[0] <= objects_per_image[1]:
        raise ValueError(f"objects_per_image must be 0 <= low <= high, got {objects_per_image}")
    params = {
        "version": FORMAT_VERSION,
        "num_train": num_train,
        "num_val": num_val,
        "height": height,
        "width": width,
        "num_classes": num_classes,
        "seed": seed,
        "objects_per_image": [int(v) for v in objects_per_image],
        "size_range": [float(v) for v in size_range],
        "min_visible": float(min_visible),
        "clutter": clutter,
        "jpeg_quality": jpeg_quality,
    }

    def write(folder: Path) -> None:
        (folder / "annotations").mkdir()
        for split, count in (("train", num_train), ("val", num_val)):
            coco = _write_split(folder, split, count, seed, params)
            (folder / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))

    generate_once(out, params, write, "synthetic dataset")
    return out


VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG"}


def write_video(
    path: Path,
    num_frames: int = 256,
    height: int = 1080,
    width: int = 1920,
    seed: int = 0,
    fps: float = 24.0,
    scene_frames: int = 12,
    num_classes: int = 3,
) -> Path:
    """Write a short clip of demo scenes (for INT8 calibration and benchmarks), atomically.

    Every ``scene_frames`` frames a new scene is rendered like the demo images; within a scene
    the view pans slowly sideways so consecutive frames differ. ``.mp4`` is MPEG-4 Part 2
    (``mp4v``), ``.avi`` Motion-JPEG, both written by OpenCV.

    Args:
        path: the ``.mp4`` or ``.avi`` file.
        num_frames: frames in the clip.
        height: frame height.
        width: frame width.
        seed: the same arguments give the same clip.
        fps: frame rate recorded in the file.
        scene_frames: frames per scene.
        num_classes: shape classes drawn.

    Returns:
        ``path``.
    """
    path = Path(path)
    codec = VIDEO_CODECS.get(path.suffix.lower())
    if codec is None:
        raise ValueError(f"{path}: the clip must be .mp4 or .avi")
    if num_frames < 1:
        raise ValueError(f"{path}: num_frames must be at least 1, got {num_frames}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    try:
        if not writer.isOpened():
            raise ValueError(f"{path}: OpenCV cannot write {codec} video here")
        scene = None
        for index in range(num_frames):
            if index % scene_frames == 0:
                rng = np.random.default_rng([seed, index // scene_frames])
                scene, _ = render_image(
                    rng, height, width, num_classes, (4, 12), (0.05, 0.4), 0.3, 24
                )
            shift = (index % scene_frames) * max(1, width // 200)
            writer.write(np.ascontiguousarray(np.roll(scene, shift, axis=1)))
        writer.release()
        os.replace(tmp, path)
    finally:
        writer.release()
        tmp.unlink(missing_ok=True)
    return path


def _size_counts(annotations: list[dict]) -> tuple[int, int, int]:
    """Numbers of COCO small, medium and large annotations."""
    areas = np.array([a["area"] for a in annotations], dtype=np.float64)
    small = int((areas < 32**2).sum())
    large = int((areas > 96**2).sum())
    return small, len(areas) - small - large, large


def synth(
    out: Path,
    num_train: int = 64,
    num_val: int = 16,
    height: int = 1080,
    width: int = 1920,
    seed: int = 0,
    video: Path | None = None,
    video_frames: int = 256,
) -> Path:
    """Generate the built-in synthetic COCO dataset of coloured shapes.

    Images of several shape classes (disc, box, triangle) on textured backgrounds, with
    occlusion and objects of all COCO size ranges; annotations in COCO format with
    non-contiguous category ids. Reuses ``out`` if it already holds the same dataset.

    Args:
        out: Output directory (gets train/, val/ and annotations/instances_{train,val}.json).
        num_train: Number of training images.
        num_val: Number of validation images.
        height: Image height in pixels.
        width: Image width in pixels.
        seed: Random seed; the same arguments give identical files.
        video: also write a 16:9 clip of such scenes here (``.mp4`` or ``.avi``), for INT8
            calibration and benchmarks on real frames.
        video_frames: frames of the clip.

    Returns:
        The dataset directory.
    """
    out = synthesize_coco(
        out, num_train=num_train, num_val=num_val, height=height, width=width, seed=seed
    )
    annotations = []
    for split in ("train", "val"):
        coco = json.loads((out / "annotations" / f"instances_{split}.json").read_text())
        annotations += coco["annotations"]
    small, medium, large = _size_counts(annotations)
    print(
        f"{out}: {num_train} train + {num_val} val images {width}x{height}, "
        f"{len(annotations)} annotations (small {small}, medium {medium}, large {large})"
    )
    if video is not None:
        write_video(Path(video), video_frames, height, width, seed)
        print(f"{video}: {video_frames} frames {width}x{height}")
    return out
