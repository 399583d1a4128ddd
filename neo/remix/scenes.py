"""Remix demo scenes: a fixed camera looking down a plaza and a road, with perspective.

The ground is a plane seen from above its horizon. An object standing at depth ``Z`` (1 at the
bottom edge of the frame, ``FAR_DEPTH`` at the farthest objects) is drawn at scale ``s = 1 / Z``:
its foot is ``s * (height - horizon)`` pixels below the horizon and its size is ``s`` times its
size at the bottom edge, so box sizes grow linearly with their image row, from about 10 pixels
just below the horizon to 150-300 pixels at the bottom of a 1080p frame (all sizes scale with the
frame height). Depths are drawn uniformly, so objects are small and dense near the horizon and
large and sparse near the bottom: the uneven layout Remix plans its blocks for.

Objects are tracks that move with constant velocities on the ground, enter from the sides, the
horizon or the bottom, and leave when out of view. They are the shape classes of
:mod:`neo.data.synth` (disc, box, triangle, star; people-, car- and bike-like proportions), drawn
far to near so that near objects occlude far ones. Annotations follow COCO: ``bbox`` is the tight
box of the visible pixels (inside the frame), ``area`` its ``w * h``; an object with less than
``MIN_VISIBLE`` of its in-frame pixels visible is not annotated. Each annotation also carries its
``track_id``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from neo.data.generated import generate_once
from neo.data.problems import DatasetError
from neo.data.synth import SHAPES
from neo.remix.files import read_json_file
from neo.utils.atomic import write_json

FORMAT_VERSION = 1
FPS = 10.0
JPEG_QUALITY = 95
FAR_DEPTH = 20.0  # depth of the farthest objects, in units of the bottom edge's depth
MIN_VISIBLE = 0.3
_HUE_OFFSET = 5.0  # OpenCV hue of class 0, as in neo.data.synth
_REFERENCE_HEIGHT = 1080
# per class: (width, height) at the bottom edge of a 1080p frame, and speed in metres per frame
_CLASS_SIZES = ((110.0, 260.0), (260.0, 200.0), (190.0, 170.0), (170.0, 170.0))
_CLASS_SPEEDS = (0.14, 0.9, 0.45, 0.3)
_PIXELS_PER_METRE = 130.0  # lateral pixels per metre at the bottom edge of a 1080p frame
_METRES_PER_DEPTH = 10.0  # metres per depth unit
_ROAD_HALF_WIDTH = 420.0  # bottom-edge pixels at 1080p


@dataclass
class _Track:
    """One moving object: ground position, velocity and looks (sizes at the bottom edge)."""

    track_id: int
    cls: int
    lateral: float  # U: image x offset from the centre, in bottom-edge pixels
    depth: float  # Z
    lateral_speed: float
    depth_speed: float
    width: float
    height: float
    outline: np.ndarray  # (N, 2) unit polygon, x in [-0.5, 0.5], y in [-1, 0] (foot at 0)
    colour: np.ndarray
    shade_direction: np.ndarray


@dataclass(frozen=True)
class _Camera:
    """Frame geometry: size, horizon row and the scale of the bottom edge."""

    width: int
    height: int
    horizon: float
    unit: float  # frame height / 1080

    def scale(self, depth: float) -> float:
        """Drawing scale ``1 / Z`` of an object at ``depth``."""
        return 1.0 / depth

    def foot(self, lateral: float, depth: float) -> tuple[float, float]:
        """Image position of a ground point."""
        s = self.scale(depth)
        return self.width / 2 + s * lateral, self.horizon + s * (self.height - self.horizon)

    def half_view(self, depth: float) -> float:
        """Half the visible ground width at ``depth``, in bottom-edge pixels."""
        return self.width / 2 * depth


def _unit_polygon(rng: np.random.Generator, shape: str) -> np.ndarray:
    """Vertices of a shape filling the unit box ``x in [-0.5, 0.5], y in [-1, 0]``."""
    if shape == "disc":
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        pts = np.stack([0.5 * np.cos(t), 0.5 * np.sin(t) - 0.5], axis=1)
    elif shape == "box":
        pts = np.array([[-0.5, -1.0], [0.5, -1.0], [0.5, 0.0], [-0.5, 0.0]])
    elif shape == "triangle":
        pts = np.array([[rng.uniform(-0.3, 0.3), -1.0], [0.5, 0.0], [-0.5, 0.0]])
    elif shape == "star":
        t = np.linspace(-np.pi / 2, 1.5 * np.pi, 10, endpoint=False)
        radius = np.where(np.arange(10) % 2 == 0, 0.5, rng.uniform(0.19, 0.25))
        pts = np.stack([radius * np.cos(t), radius * np.sin(t) - 0.5], axis=1)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return pts


def _class_colour(rng: np.random.Generator, cls: int, num_classes: int) -> np.ndarray:
    """A BGR colour of the class's hue family (jitter wider than half the hue spacing)."""
    spacing = 180 / num_classes
    hue = (_HUE_OFFSET + cls * spacing + rng.uniform(-0.6, 0.6) * spacing) % 180
    hsv = np.array([[[hue, rng.uniform(150, 255), rng.uniform(150, 255)]]], dtype=np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _new_track(
    rng: np.random.Generator, track_id: int, camera: _Camera, num_classes: int, entering: bool
) -> _Track:
    """A track placed anywhere in view, or (``entering``) just outside the view heading in."""
    cls = int(rng.integers(0, num_classes))
    metres = _CLASS_SPEEDS[cls] * rng.uniform(0.7, 1.3)
    if cls == 0 or rng.random() < 0.3:
        angle = rng.uniform(0, 2 * np.pi)
    else:  # vehicles mostly drive along the road, towards or away from the camera
        angle = np.pi / 2 + rng.choice([0.0, np.pi]) + rng.normal(0, 0.05)
    lateral_speed = np.cos(angle) * metres * _PIXELS_PER_METRE * camera.unit
    depth_speed = np.sin(angle) * metres / _METRES_PER_DEPTH
    width, height = _CLASS_SIZES[cls]
    if cls in (1, 2) and abs(np.cos(angle)) > 0.7:  # a vehicle seen from the side is longer
        width *= 1.4
    jitter = rng.uniform(0.85, 1.15)
    width, height = width * jitter * camera.unit, height * jitter * camera.unit
    depth = rng.uniform(1.0, FAR_DEPTH)
    lateral = rng.uniform(-1, 1) * camera.half_view(depth)
    if entering:
        side = rng.random()
        if side < 0.6:  # from the left or right edge
            edge = camera.half_view(depth) + width / 2
            lateral = edge if lateral_speed < 0 else -edge
        elif side < 0.85:  # from the horizon
            depth, depth_speed = FAR_DEPTH, -abs(depth_speed)
            lateral = rng.uniform(-1, 1) * camera.half_view(depth) * 0.5
        else:  # from below the frame
            depth, depth_speed = 0.8, abs(depth_speed)
            lateral = rng.uniform(-1, 1) * camera.half_view(depth) * 0.8
    direction = rng.normal(size=2)
    return _Track(
        track_id=track_id,
        cls=cls,
        lateral=float(lateral),
        depth=float(depth),
        lateral_speed=float(lateral_speed),
        depth_speed=float(depth_speed),
        width=float(width),
        height=float(height),
        outline=_unit_polygon(rng, SHAPES[cls]),
        colour=_class_colour(rng, cls, num_classes),
        shade_direction=direction / (np.linalg.norm(direction) + 1e-9),
    )


def _in_view(track: _Track, camera: _Camera) -> bool:
    """Whether any part of the track can still be in the frame."""
    if not 0.7 <= track.depth <= FAR_DEPTH + 0.5:
        return False
    return abs(track.lateral) <= camera.half_view(track.depth) + track.width


def _background(rng: np.random.Generator, camera: _Camera) -> np.ndarray:
    """The static scene: sky and skyline, ground texture, road with lanes, tiles and clutter."""
    width, height, horizon, unit = camera.width, camera.height, camera.horizon, camera.unit
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    sky = np.array([200, 175, 150], np.float32) * (1 - rows) + np.array([225, 215, 205]) * rows
    ground = np.array([150, 160, 165], np.float32) * (1 - rows) + np.array([95, 105, 110]) * rows
    coarse = rng.uniform(-25, 25, size=(6, 10, 1)) + rng.uniform(-6, 6, size=(6, 10, 3))
    coarse = coarse.astype(np.float32)
    texture = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    horizon_row = round(horizon)
    img = np.where(np.arange(height)[:, None, None] < horizon_row, sky, ground + texture)
    img = np.ascontiguousarray(np.broadcast_to(img, (height, width, 3)).clip(0, 255), np.uint8)

    for _ in range(int(rng.integers(10, 18))):  # skyline of grey buildings
        x0 = int(rng.uniform(-0.05, 1.0) * width)
        w, h = int(rng.uniform(0.03, 0.12) * width), int(rng.uniform(0.02, 0.12) * height)
        level = int(rng.integers(110, 190))
        cv2.rectangle(img, (x0, horizon_row - h), (x0 + w, horizon_row), (level,) * 3, -1)

    def ground_point(lateral: float, depth: float) -> tuple[float, float]:
        return camera.foot(lateral * unit, depth)

    def quad(lateral: tuple[float, float], depth: tuple[float, float]) -> np.ndarray:
        corners = [(lateral[0], depth[0]), (lateral[1], depth[0])]
        corners += [(lateral[1], depth[1]), (lateral[0], depth[1])]
        return np.round(np.array([ground_point(u, z) for u, z in corners]) * 16).astype(np.int32)

    tile_colour = (128, 135, 138)
    for lateral in np.arange(-6000.0, 6001.0, 300.0):  # plaza tile lines towards the horizon
        near, far = ground_point(lateral, 0.5), ground_point(lateral, FAR_DEPTH * 4)
        cv2.line(img, _fixed(near), _fixed(far), tile_colour, 1, cv2.LINE_AA, shift=4)
    for depth in np.arange(1.0, FAR_DEPTH, 1.0):
        y = ground_point(0, depth)[1]
        cv2.line(img, (0, int(y)), (width, int(y)), tile_colour, max(1, round(2 * unit / depth)))
    road = quad((-_ROAD_HALF_WIDTH, _ROAD_HALF_WIDTH), (0.5, FAR_DEPTH * 4))
    cv2.fillPoly(img, [road], (88, 88, 92), cv2.LINE_AA, shift=4)
    for lateral in (-_ROAD_HALF_WIDTH, _ROAD_HALF_WIDTH):  # solid edge lines
        cv2.fillPoly(
            img, [quad((lateral - 6, lateral + 6), (0.5, FAR_DEPTH * 4))], (210,) * 3, 16, 4
        )
    for start in np.arange(0.5, FAR_DEPTH * 2, 0.6):  # dashed centre line
        cv2.fillPoly(img, [quad((-5, 5), (start, start + 0.3))], (225, 225, 230), cv2.LINE_AA, 4)

    for depth in np.arange(1.5, FAR_DEPTH, 1.5):  # lamp posts along the road, planters beside
        for side in (-1, 1):
            x, y = camera.foot(side * (_ROAD_HALF_WIDTH + 60) * unit, depth)
            s = camera.scale(depth)
            post = max(1, round(10 * unit * s))
            cv2.rectangle(
                img,
                (int(x) - post, int(y - 420 * unit * s)),
                (int(x) + post, int(y)),
                (60,) * 3,
                -1,
            )
            px, py = camera.foot(side * (_ROAD_HALF_WIDTH + 700) * unit, depth + 0.7)
            ps = camera.scale(depth + 0.7)
            half, tall = int(70 * unit * ps), int(45 * unit * ps)
            cv2.rectangle(
                img, (int(px) - half, int(py) - tall), (int(px) + half, int(py)), (70, 95, 85), -1
            )
    return img


def _fixed(point: tuple[float, float]) -> tuple[int, int]:
    """A point in the 4-bit fixed-point coordinates of OpenCV's ``shift=4``."""
    return round(point[0] * 16), round(point[1] * 16)


def _draw(
    img: np.ndarray, instances: np.ndarray, index: int, track: _Track, camera: _Camera
) -> tuple[list[int], int] | None:
    """Draws one track into the frame and the instance map.

    Returns:
        The drawn in-frame extent ``[x0, y0, x1, y1]`` and its pixel count, or ``None`` when
        nothing of it is in the frame.
    """
    s = camera.scale(track.depth)
    foot_x, foot_y = camera.foot(track.lateral, track.depth)
    pts = track.outline * (track.width * s, track.height * s) + (foot_x, foot_y)
    thickness = max(1, round(np.sqrt(track.width * track.height) * s / 22))
    lo = np.floor(pts.min(axis=0)).astype(int) - thickness
    hi = np.ceil(pts.max(axis=0)).astype(int) + thickness + 1
    x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
    x1, y1 = min(int(hi[0]), camera.width), min(int(hi[1]), camera.height)
    if x1 <= x0 or y1 <= y0:
        return None
    size = hi - lo
    local = np.round((pts - lo) * 16).astype(np.int32)
    fill = np.zeros((size[1], size[0]), dtype=np.uint8)
    cv2.fillPoly(fill, [local], 1, cv2.LINE_8, shift=4)
    edge = np.zeros_like(fill)
    cv2.polylines(edge, [local], True, 1, thickness, cv2.LINE_8, shift=4)
    crop = (slice(y0 - lo[1], y1 - lo[1]), slice(x0 - lo[0], x1 - lo[0]))
    fill, edge = fill[crop], edge[crop]
    mask = (fill | edge).astype(bool)
    drawn = int(mask.sum())
    if drawn == 0:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    ramp = (xx - (lo[0] + hi[0]) / 2) * track.shade_direction[0]
    ramp += (yy - (lo[1] + hi[1]) / 2) * track.shade_direction[1]
    shade = 1.0 + 0.25 * ramp / (0.5 * max(size))
    body = np.clip(shade[..., None] * track.colour, 0, 255)
    patch = np.where(edge[..., None].astype(bool), track.colour * 0.4, body).astype(np.uint8)
    roi = (slice(y0, y1), slice(x0, x1))
    img[roi][mask] = patch[mask]
    instances[roi][mask] = index
    return [x0, y0, x1, y1], drawn


def _render_frame(
    background: np.ndarray, tracks: list[_Track], camera: _Camera, noise: np.random.Generator
) -> tuple[np.ndarray, list[dict]]:
    """One frame (BGR) and its annotations (``category_id``, ``bbox``, ``area``, ``track_id``)."""
    img = background.copy()
    instances = np.zeros(img.shape[:2], dtype=np.int32)
    placed: list[tuple[_Track, list[int], int]] = []
    for track in sorted(tracks, key=lambda t: -t.depth):  # far to near: near ones occlude
        drawn = _draw(img, instances, len(placed) + 1, track, camera)
        if drawn is not None:
            placed.append((track, *drawn))
    img = cv2.GaussianBlur(img, (3, 3), 0)
    grain = noise.integers(0, 7, size=img.shape[:2], dtype=np.uint8)
    img = cv2.subtract(cv2.add(img, cv2.merge([grain, grain, grain])), np.full_like(img, 3))
    visible = np.bincount(instances.ravel(), minlength=len(placed) + 1)
    annotations = []
    for index, (track, extent, drawn) in enumerate(placed, start=1):
        if visible[index] < max(MIN_VISIBLE * drawn, 2):
            continue
        region = instances[extent[1] : extent[3], extent[0] : extent[2]] == index
        ys, xs = np.nonzero(region)
        bx, by = extent[0] + int(xs.min()), extent[1] + int(ys.min())
        bw, bh = int(xs.max() - xs.min()) + 1, int(ys.max() - ys.min()) + 1
        annotations.append(
            {
                "category_id": track.cls + 1,
                "bbox": [bx, by, bw, bh],
                "area": bw * bh,
                "track_id": track.track_id,
            }
        )
    return img, annotations


def _simulate(params: dict) -> tuple[_Camera, np.ndarray, list[list[_Track]]]:
    """The camera, the static background, and the tracks alive in each frame (positions fixed)."""
    rng = np.random.default_rng([params["seed"], 0])
    width, height = params["width"], params["height"]
    camera = _Camera(width, height, rng.uniform(0.27, 0.33) * height, height / _REFERENCE_HEIGHT)
    background = _background(rng, camera)
    num_classes, max_objects = params["num_classes"], params["max_objects"]
    tracks = [
        _new_track(rng, k + 1, camera, num_classes, entering=False)
        for k in range(round(0.85 * max_objects))
    ]
    next_id = len(tracks) + 1
    frames = []
    for _ in range(params["num_frames"]):
        frames.append([_Track(**vars(t)) for t in tracks])
        for t in tracks:
            t.lateral += t.lateral_speed
            t.depth += t.depth_speed
        tracks = [t for t in tracks if _in_view(t, camera)]
        for _ in range(int(rng.binomial(max_objects - len(tracks), 0.15))):
            tracks.append(_new_track(rng, next_id, camera, num_classes, entering=True))
            next_id += 1
    return camera, background, frames


def _categories(num_classes: int) -> list[dict]:
    return [{"id": k + 1, "name": SHAPES[k], "supercategory": "shape"} for k in range(num_classes)]


def _write_scene(folder: Path, params: dict) -> None:
    """Renders every frame into ``folder`` (frames/, annotations.json, scene.mp4)."""
    camera, background, frames = _simulate(params)
    (folder / "frames").mkdir()
    writer = None
    if params["video"]:
        fourcc = cv2.VideoWriter_fourcc(*"mp4v")
        writer = cv2.VideoWriter(
            str(folder / "scene.mp4"), fourcc, FPS, (camera.width, camera.height)
        )
        if not writer.isOpened():
            raise ValueError(f"{folder / 'scene.mp4'}: OpenCV cannot write mp4v video here")
    images, annotations = [], []
    try:
        for index, tracks in enumerate(frames):
            noise = np.random.default_rng([params["seed"], 1, index])
            img, anns = _render_frame(background, tracks, camera, noise)
            file_name = f"frames/{index:06d}.jpg"
            ok, encoded = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                raise RuntimeError(f"{folder / file_name}: JPEG encoding failed")
            (folder / file_name).write_bytes(encoded.tobytes())
            if writer is not None:
                writer.write(img)
            image_id = index + 1
            images.append(
                {
                    "id": image_id,
                    "file_name": file_name,
                    "width": camera.width,
                    "height": camera.height,
                    "frame_index": index,
                }
            )
            for ann in anns:
                annotations.append(
                    {"id": len(annotations) + 1, "image_id": image_id, **ann, "iscrowd": 0}
                )
    finally:
        if writer is not None:
            writer.release()
    coco = {
        "info": {
            "description": "neo synthetic fixed-camera scene (Remix demo)",
            "version": FORMAT_VERSION,
            "horizon": round(camera.horizon, 2),
            "fps": FPS,
        },
        "images": images,
        "annotations": annotations,
        "categories": _categories(params["num_classes"]),
    }
    (folder / "annotations.json").write_text(json.dumps(coco))


def synth_scenes(
    out: Path,
    num_frames: int = 60,
    width: int = 1920,
    height: int = 1080,
    num_classes: int = 3,
    max_objects: int = 60,
    seed: int = 0,
    video: bool = True,
) -> Path:
    """Write a synthetic fixed-camera high-resolution scene video with COCO annotations per frame.

    A camera looks down a plaza and a road with perspective: objects near the horizon are tiny
    (about 10 px at 1080p) and dense, objects near the bottom large (150-300 px) and sparse;
    they move smoothly, entering and leaving the view. Writes ``out/frames/000000.jpg ...``
    (JPEG 95), ``out/annotations.json`` (COCO; ``file_name`` relative to ``out``, category ids
    1..num_classes, each annotation with its ``track_id``) and, with ``video``,
    ``out/scene.mp4`` (mp4v, 10 fps) of the same frames. The folder is built beside ``out`` and
    renamed into place with a completion marker; a complete folder made with the same arguments
    is reused.

    Args:
        out: Output folder.
        num_frames: Number of frames.
        width: Frame width in pixels.
        height: Frame height in pixels (object sizes scale with it).
        num_classes: Number of shape classes, 1 to 4 (disc, box, triangle, star).
        max_objects: Most objects in view at once.
        seed: Random seed; the same arguments give identical frames and annotations.
        video: Also write ``scene.mp4``.

    Returns:
        ``out``.

    Raises:
        ValueError: Invalid arguments.
        DatasetError: ``out`` exists but is not this scene.
    """
    out = Path(out)
    if not 1 <= num_classes <= len(SHAPES):
        raise ValueError(f"num_classes must be between 1 and {len(SHAPES)}, got {num_classes}")
    if num_frames < 1 or max_objects < 1:
        raise ValueError(
            f"num_frames and max_objects must be >= 1, got {num_frames}, {max_objects}"
        )
    if width < 64 or height < 64:
        raise ValueError(f"width and height must be >= 64, got {width}x{height}")
    params = {
        "version": FORMAT_VERSION,
        "num_frames": int(num_frames),
        "width": int(width),
        "height": int(height),
        "num_classes": int(num_classes),
        "max_objects": int(max_objects),
        "seed": int(seed),
        "video": bool(video),
    }
    generate_once(out, params, lambda folder: _write_scene(folder, params), "synthetic scene")
    return out


def split_history(out: Path, history_frames: int) -> tuple[Path, Path]:
    """Splits a scene's annotations into historical frames (for planning) and test frames.

    Args:
        out: A folder written by :func:`synth_scenes` (holding ``annotations.json``).
        history_frames: Number of first frames whose boxes stand for the oracle's history.

    Returns:
        The paths of ``out/history.json`` (the first ``history_frames`` frames) and
        ``out/test.json`` (the others), COCO files with the same categories, written atomically.

    Raises:
        FileNotFoundError: No ``annotations.json`` in ``out``.
        DatasetError: Not a COCO file, or ``history_frames`` not between 1 and the frames - 1.
    """
    out = Path(out)
    source = out / "annotations.json"
    coco = read_json_file(source, missing="no such file; write the scene with synth_scenes first")
    if not isinstance(coco, dict) or not {"images", "annotations", "categories"} <= coco.keys():
        raise DatasetError(f"{source}: not a COCO file (expected images, annotations, categories)")
    images = sorted(coco["images"], key=lambda image: image["id"])
    if not 1 <= history_frames < len(images):
        raise DatasetError(
            f"{source}: history_frames must be between 1 and {len(images) - 1} (the scene has "
            f"{len(images)} frames), got {history_frames}"
        )
    paths = []
    for name, part in (("history", images[:history_frames]), ("test", images[history_frames:])):
        ids = {image["id"] for image in part}
        subset = {
            "info": {**coco.get("info", {}), "split": name},
            "images": part,
            "annotations": [a for a in coco["annotations"] if a["image_id"] in ids],
            "categories": coco["categories"],
        }
        path = out / f"{name}.json"
        write_json(path, subset)
        paths.append(path)
    return paths[0], paths[1]
