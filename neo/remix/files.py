"""Remix's two files: ``profiles.json`` (per-detector latency and accuracy) and ``plans.json``.

Both keep the format of the original Remix re-implementation, so files written by either load in
the other. ``profiles.json`` maps a detector name to ``{"latency": seconds, "acc_vector": [12
floats]}`` with optional ``"input_size": [w, h]`` and ``"latency_per_batch": {"1": s, "4": s}``.
``plans.json`` is a list of ``{"plan_id", "est_ap", "est_lat", "blocks": [{"x1", "y1", "x2",
"y2", "detector_name", "skip_window"}]}`` sorted by ``est_ap``, most accurate first.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neo.data.problems import DatasetError
from neo.remix.bins import NUM_BINS
from neo.utils.atomic import write_json

BLOCK_FIELDS = ("x1", "y1", "x2", "y2", "detector_name")
PLAN_FIELDS = ("plan_id", "est_ap", "est_lat", "blocks")


@dataclass(frozen=True)
class Profile:
    """What the profiler measured for one detector.

    Attributes:
        name: the detector's name (its key in ``profiles.json``).
        latency: seconds for one block (a batch of one).
        acc_vector: accuracy (AP) per size bin, 12 values in ``[0, 1]``.
        input_size: ``(width, height)`` the detector resizes a block to; ``None`` if unknown.
        latency_per_batch: measured seconds of one batch, by batch size.
    """

    name: str
    latency: float
    acc_vector: tuple[float, ...]
    input_size: tuple[int, int] | None = None
    latency_per_batch: dict[int, float] = field(default_factory=dict)

    def batch_latency(self, blocks: int) -> float:
        """Seconds to run ONE batch of ``blocks`` blocks.

        Measured batch sizes are used exactly and linearly interpolated between; past the
        largest measured size the last measured slope is extended. ``latency`` counts as the
        batch of one when that was not measured; with no batch measurements a batch of ``n``
        costs ``n * latency``.

        Args:
            blocks: the batch size (0 costs nothing).

        Returns:
            The batch's latency in seconds.
        """
        if blocks <= 0:
            return 0.0
        points = {1: self.latency, **self.latency_per_batch}
        if blocks in points:
            return float(points[blocks])
        sizes = sorted(points)
        index = bisect.bisect_left(sizes, blocks)
        if index == 0:  # below the smallest measured size: a line through the origin
            return float(points[sizes[0]] * blocks / sizes[0])
        if index == len(sizes):
            if len(sizes) == 1:
                return float(points[sizes[0]] * blocks / sizes[0])
            low, high = sizes[-2], sizes[-1]
        else:
            low, high = sizes[index - 1], sizes[index]
        slope = (points[high] - points[low]) / (high - low)
        return float(points[low] + slope * (blocks - low))

    def to_json(self) -> dict[str, Any]:
        """The entry of ``profiles.json`` (without the name, which is its key)."""
        entry: dict[str, Any] = {"latency": self.latency, "acc_vector": list(self.acc_vector)}
        if self.input_size is not None:
            entry["input_size"] = list(self.input_size)
        if self.latency_per_batch:
            entry["latency_per_batch"] = {
                str(size): seconds for size, seconds in sorted(self.latency_per_batch.items())
            }
        return entry


@dataclass(frozen=True)
class Block:
    """One rectangle of a plan and the detector that runs on it.

    Attributes:
        x1: left edge in view pixels (inclusive).
        y1: top edge (inclusive).
        x2: right edge (exclusive).
        y2: bottom edge (exclusive).
        detector_name: the detector run on the block.
        skip_window: frames the runtime may skip the block for (0: run it every frame).
    """

    x1: int
    y1: int
    x2: int
    y2: int
    detector_name: str
    skip_window: int = 0

    @property
    def width(self) -> int:
        """Width in pixels."""
        return self.x2 - self.x1

    @property
    def height(self) -> int:
        """Height in pixels."""
        return self.y2 - self.y1


@dataclass
class Plan:
    """A partition of the view into blocks, with its estimated accuracy and latency.

    Attributes:
        plan_id: position in ``plans.json`` (0: the most accurate).
        est_ap: estimated AP in ``[0, 1]``.
        est_lat: estimated seconds per frame.
        blocks: the blocks, which tile the view.
    """

    plan_id: int
    est_ap: float
    est_lat: float
    blocks: list[Block]

    def blocks_per_detector(self) -> dict[str, int]:
        """How many blocks each detector runs, by detector name (sorted)."""
        counts: dict[str, int] = {}
        for block in self.blocks:
            counts[block.detector_name] = counts.get(block.detector_name, 0) + 1
        return dict(sorted(counts.items()))


def read_json_file(path: Path, missing: str = "no such file") -> Any:
    """A JSON file's content; a missing or undecodable file is a one-line error naming it.

    Args:
        path: the file.
        missing: what the error says when the file does not exist.

    Raises:
        FileNotFoundError: no such file.
        DatasetError: not JSON (or not UTF-8).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {missing}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: not a JSON file ({e})") from None


def _finite_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _parse_profile(path: Path, name: str, entry: Any) -> Profile:
    where = f"{path}: detector {name!r}"
    if not isinstance(entry, dict):
        raise DatasetError(f"{where}: expected an object with latency and acc_vector")
    for key in ("latency", "acc_vector"):
        if key not in entry:
            raise DatasetError(f"{where}: missing {key}")
    latency = entry["latency"]
    if not _finite_number(latency) or latency < 0:
        raise DatasetError(f"{where}: latency must be a finite number >= 0 s, got {latency!r}")
    acc = entry["acc_vector"]
    if not isinstance(acc, list) or len(acc) != NUM_BINS:
        length = len(acc) if isinstance(acc, list) else type(acc).__name__
        raise DatasetError(f"{where}: acc_vector must hold {NUM_BINS} numbers, got {length}")
    if not all(_finite_number(v) and 0.0 <= v <= 1.0 for v in acc):
        raise DatasetError(f"{where}: acc_vector values must lie in [0, 1]")
    input_size = entry.get("input_size")
    if input_size is not None:
        if (
            not isinstance(input_size, list)
            or len(input_size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in input_size)
        ):
            raise DatasetError(f"{where}: input_size must be [width, height] positive integers")
        input_size = (input_size[0], input_size[1])
    per_batch: dict[int, float] = {}
    raw_batches = entry.get("latency_per_batch") or {}
    if not isinstance(raw_batches, dict):
        raise DatasetError(f"{where}: latency_per_batch must map batch sizes to seconds")
    for size, seconds in raw_batches.items():
        if not str(size).isdigit() or int(size) < 1:
            raise DatasetError(f"{where}: latency_per_batch key {size!r} is not a batch size >= 1")
        if not _finite_number(seconds) or seconds < 0:
            raise DatasetError(
                f"{where}: latency_per_batch[{size}] must be a finite number >= 0 s, "
                f"got {seconds!r}"
            )
        per_batch[int(size)] = float(seconds)
    return Profile(
        name=name,
        latency=float(latency),
        acc_vector=tuple(float(v) for v in acc),
        input_size=input_size,
        latency_per_batch=dict(sorted(per_batch.items())),
    )


def load_profiles(path: Path) -> dict[str, Profile]:
    """Reads ``profiles.json``.

    Args:
        path: the file.

    Returns:
        Profiles by detector name, in the file's order.

    Raises:
        FileNotFoundError: no such file.
        DatasetError: not JSON, or an entry is missing a field or holds a bad value.
    """
    path = Path(path)
    data = read_json_file(path)
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected an object mapping detector names to profiles")
    return {str(name): _parse_profile(path, str(name), entry) for name, entry in data.items()}


def save_profiles(path: Path, profiles: dict[str, Profile]) -> None:
    """Writes ``profiles.json`` atomically, detectors sorted by name.

    Args:
        path: the file.
        profiles: profiles by detector name.
    """
    data = {name: profiles[name].to_json() for name in sorted(profiles)}
    write_json(Path(path), data, indent=2)


def update_profile(path: Path, profile: Profile) -> None:
    """Adds or replaces one detector's entry of ``profiles.json``, keeping the others.

    Args:
        path: the file (created if missing).
        profile: the new entry.
    """
    path = Path(path)
    profiles = load_profiles(path) if path.exists() else {}
    profiles[profile.name] = profile
    save_profiles(path, profiles)


def check_tiling(blocks: list[Block], view: tuple[int, int]) -> None:
    """Checks that the blocks tile the view exactly: inside it, no overlap, nothing uncovered.

    Args:
        blocks: the blocks (integer coordinates, ``x2``/``y2`` exclusive).
        view: ``(width, height)`` of the view.

    Raises:
        ValueError: naming the first problem (a block outside the view, an empty block, the
            overlap of blocks ``i`` and ``j``, or the uncovered area).
    """
    width, height = view
    if not blocks:
        raise ValueError("no blocks")
    boxes = np.array([[b.x1, b.y1, b.x2, b.y2] for b in blocks], dtype=np.int64)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"block {i} is empty ({x1},{y1})-({x2},{y2})")
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            raise ValueError(f"block {i} ({x1},{y1})-({x2},{y2}) leaves the {width}x{height} view")
    overlap_w = np.minimum(boxes[:, None, 2], boxes[None, :, 2]) - np.maximum(
        boxes[:, None, 0], boxes[None, :, 0]
    )
    overlap_h = np.minimum(boxes[:, None, 3], boxes[None, :, 3]) - np.maximum(
        boxes[:, None, 1], boxes[None, :, 1]
    )
    overlaps = np.triu((overlap_w > 0) & (overlap_h > 0), k=1)
    if overlaps.any():
        i, j = (int(v) for v in np.argwhere(overlaps)[0])
        raise ValueError(f"blocks {i} and {j} overlap")
    covered = int(((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).sum())
    if covered != width * height:
        raise ValueError(f"{width * height - covered} px of the {width}x{height} view uncovered")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_block(where: str, index: int, entry: Any) -> Block:
    where = f"{where} block {index}"
    if not isinstance(entry, dict):
        raise DatasetError(f"{where}: expected an object")
    for key in BLOCK_FIELDS:
        if key not in entry:
            raise DatasetError(f"{where}: missing {key}")
    coords = [entry[k] for k in BLOCK_FIELDS[:4]]
    if not all(_is_int(v) for v in coords):
        raise DatasetError(f"{where}: x1, y1, x2, y2 must be integers")
    skip = entry.get("skip_window", 0)
    if not _is_int(skip) or skip < 0:
        raise DatasetError(f"{where}: skip_window must be an integer >= 0")
    return Block(*coords, detector_name=str(entry["detector_name"]), skip_window=skip)


def _parse_plan(
    path: Path,
    index: int,
    entry: Any,
    profiles: dict[str, Profile] | None,
    view: tuple[int, int] | None,
) -> Plan:
    where = f"{path}: plan {index}"
    if not isinstance(entry, dict):
        raise DatasetError(f"{where}: expected an object")
    for key in PLAN_FIELDS:
        if key not in entry:
            raise DatasetError(f"{where}: missing {key}")
    where = f"{path}: plan {entry['plan_id']!r}"
    if not _is_int(entry["plan_id"]):
        raise DatasetError(f"{where}: plan_id must be an integer")
    for key in ("est_ap", "est_lat"):
        if not _finite_number(entry[key]) or entry[key] < 0:
            raise DatasetError(f"{where}: {key} must be a finite number >= 0")
    if not isinstance(entry["blocks"], list):
        raise DatasetError(f"{where}: blocks must be a list")
    blocks = [_parse_block(where, i, b) for i, b in enumerate(entry["blocks"])]
    if profiles is not None:
        for i, block in enumerate(blocks):
            if block.detector_name not in profiles:
                raise DatasetError(
                    f"{where} block {i}: unknown detector {block.detector_name!r} (not in the "
                    f"profiles: {', '.join(sorted(profiles))})"
                )
    if view is not None:
        try:
            check_tiling(blocks, view)
        except ValueError as e:
            raise DatasetError(f"{where}: blocks do not tile the view: {e}") from None
    return Plan(int(entry["plan_id"]), float(entry["est_ap"]), float(entry["est_lat"]), blocks)


def load_plans(
    path: Path,
    profiles: dict[str, Profile] | None = None,
    view: tuple[int, int] | None = None,
) -> list[Plan]:
    """Reads ``plans.json``.

    Args:
        path: the file.
        profiles: when given, every block's detector must be one of them.
        view: ``(width, height)``; when given, every plan's blocks must tile it exactly.

    Returns:
        The plans in the file's order (most accurate first when the planner wrote it).

    Raises:
        FileNotFoundError: no such file.
        DatasetError: not JSON, a missing field, an unknown detector or blocks that do not tile.
    """
    path = Path(path)
    data = read_json_file(path)
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a list of plans")
    return [_parse_plan(path, i, entry, profiles, view) for i, entry in enumerate(data)]


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The entry of ``plans.json`` for one plan.

    Args:
        plan: the plan.

    Returns:
        A JSON-ready dictionary.
    """
    return {
        "plan_id": plan.plan_id,
        "est_ap": plan.est_ap,
        "est_lat": plan.est_lat,
        "blocks": [
            {
                "x1": b.x1,
                "y1": b.y1,
                "x2": b.x2,
                "y2": b.y2,
                "detector_name": b.detector_name,
                "skip_window": b.skip_window,
            }
            for b in plan.blocks
        ],
    }


def save_plans(path: Path, plans: list[Plan]) -> None:
    """Writes ``plans.json`` atomically, most accurate plan first.

    Args:
        path: the file.
        plans: the plans (written sorted by ``est_ap`` descending, stable otherwise).
    """
    ordered = sorted(plans, key=lambda p: -p.est_ap)
    write_json(Path(path), [plan_to_json(p) for p in ordered], indent=2)
