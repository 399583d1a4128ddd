"""Negative boxes for open-set re-identification (``neo data negatives``).

Two kinds, both labelled -1 (no identity): ``background`` boxes, the size of a player of the
frame but overlapping no player, and ``partial`` boxes, a player box shifted and rescaled so that
only part of the player is in it. Each frame draws from its own generator (seeded from ``seed``
and the frame), so the boxes do not depend on the order of the frames.
"""

from __future__ import annotations

import csv
import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neo.data.problems import DatasetError
from neo.data.reid.meta import (
    DEFAULT_FRAME_PATTERN,
    fit_boxes,
    frame_path_builder,
    frame_sizes,
    open_csv_rows,
    parse_integer,
    read_meta,
)
from neo.data.reid.records import BACKGROUND, PARTIAL, PLAYER, UNKNOWN, BoxRecord
from neo.utils.atomic import atomic_path

NEGATIVE_COLUMNS = (
    "quarter",
    "angle",
    "session",
    "frame",
    "x",
    "y",
    "w",
    "h",
    "kind",
    "source_row",
)
NEGATIVE_KINDS = (BACKGROUND, PARTIAL)
CANDIDATES = 256  # boxes drawn per negative before giving up on it
PARTIAL_SCALE = (0.5, 1.5)  # range of the width and height of a partial box, relative
PARTIAL_SHIFT = 0.75  # largest shift of a partial box's centre, relative to the player's size


def iou_matrix(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection over union of every box with every other box.

    Args:
        boxes: ``(N, 4)`` boxes ``x, y, w, h``.
        others: ``(M, 4)`` boxes ``x, y, w, h``.

    Returns:
        ``(N, M)`` IoU values.
    """
    a = boxes.astype(np.float64)[:, None, :]
    b = others.astype(np.float64)[None, :, :]
    width = np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2]) - np.maximum(
        a[..., 0], b[..., 0]
    )
    height = np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3]) - np.maximum(
        a[..., 1], b[..., 1]
    )
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return inter / np.maximum(union, 1e-12)


def frame_rng(seed: int, record: BoxRecord) -> np.random.Generator:
    """The generator of one frame, from ``seed`` and the frame (not its folder).

    Args:
        seed: Negatives seed.
        record: Any box of the frame.

    Returns:
        A generator that is the same whatever the order in which frames are visited.
    """
    key = (
        f"{seed}|{record.quarter}|{record.angle}|{record.session}|{record.frame}|"
        f"{Path(record.frame_path).name}"
    )
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


def _first(valid: np.ndarray) -> int | None:
    return int(np.argmax(valid)) if valid.any() else None


def _backgrounds(
    rng: np.random.Generator,
    players: np.ndarray,
    size: tuple[int, int],
    count: int,
    max_iou: float,
) -> tuple[list[np.ndarray], int]:
    width, height = size
    placed, failed = [], 0
    for _ in range(count):
        _, _, w, h = players[rng.integers(len(players))]
        if w > width or h > height:
            failed += 1
            continue
        candidates = np.stack(
            [
                rng.integers(0, width - w + 1, CANDIDATES),
                rng.integers(0, height - h + 1, CANDIDATES),
                np.full(CANDIDATES, w),
                np.full(CANDIDATES, h),
            ],
            axis=1,
        )
        found = _first(iou_matrix(candidates, players).max(axis=1) <= max_iou)
        if found is None:
            failed += 1
        else:
            placed.append(candidates[found])
    return placed, failed


def _partial_candidates(
    rng: np.random.Generator, player: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    x, y, w, h = player.astype(np.float64)
    new_w = w * rng.uniform(*PARTIAL_SCALE, CANDIDATES)
    new_h = h * rng.uniform(*PARTIAL_SCALE, CANDIDATES)
    centre_x = x + w / 2 + w * rng.uniform(-PARTIAL_SHIFT, PARTIAL_SHIFT, CANDIDATES)
    centre_y = y + h / 2 + h * rng.uniform(-PARTIAL_SHIFT, PARTIAL_SHIFT, CANDIDATES)
    x0 = np.clip(np.round(centre_x - new_w / 2), 0, size[0])
    y0 = np.clip(np.round(centre_y - new_h / 2), 0, size[1])
    x1 = np.clip(np.round(centre_x + new_w / 2), 0, size[0])
    y1 = np.clip(np.round(centre_y + new_h / 2), 0, size[1])
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(np.int64)


def _partials(
    rng: np.random.Generator,
    players: np.ndarray,
    size: tuple[int, int],
    count: int,
    iou_range: tuple[float, float],
) -> tuple[list[tuple[int, np.ndarray]], int]:
    low, high = iou_range
    placed, failed = [], 0
    for index, player in enumerate(players):
        for _ in range(count):
            candidates = _partial_candidates(rng, player, size)
            ious = iou_matrix(candidates, players)
            # partly this player, and no better a crop of any other player
            valid = (
                (candidates[:, 2] > 0)
                & (candidates[:, 3] > 0)
                & (ious[:, index] >= low)
                & (ious.max(axis=1) <= high)
            )
            found = _first(valid)
            if found is None:
                failed += 1
            else:
                placed.append((index, candidates[found]))
    return placed, failed


def _check_options(
    num_bg_per_frame: int,
    num_partial_per_box: int,
    max_background_iou: float,
    partial_iou: tuple[float, float],
) -> None:
    if num_bg_per_frame < 0 or num_partial_per_box < 0:
        raise ValueError("num_bg_per_frame and num_partial_per_box must be >= 0")
    if not 0.0 <= max_background_iou < 1.0:
        raise ValueError(f"max_background_iou must be in [0, 1), got {max_background_iou}")
    low, high = partial_iou
    if not 0.0 < low <= high < 1.0:
        raise ValueError(
            f"partial_iou must be (low, high) with 0 < low <= high < 1, got {partial_iou}"
        )


def generate_negatives(
    records: Sequence[BoxRecord],
    num_bg_per_frame: int = 1,
    num_partial_per_box: int = 1,
    max_background_iou: float = 0.1,
    partial_iou: tuple[float, float] = (0.1, 0.5),
    seed: int = 0,
) -> list[BoxRecord]:
    """Background and partial boxes for every frame with players.

    Args:
        records: Player boxes, fitted to their frames (other kinds are ignored).
        num_bg_per_frame: Background boxes per frame: the size of a random player of the frame,
            anywhere in the frame with IoU <= ``max_background_iou`` with every player.
        num_partial_per_box: Partial boxes per player: shifted and rescaled, inside the frame,
            IoU with that player in ``partial_iou`` and with no player above its upper end.
        max_background_iou: Largest IoU of a background box with a player.
        partial_iou: ``(low, high)`` IoU of a partial box with its player.
        seed: Seed; each frame draws from a generator of its own.

    Returns:
        The negatives (label -1; a partial box's ``row`` is its player's row), frame by frame.
    """
    _check_options(num_bg_per_frame, num_partial_per_box, max_background_iou, partial_iou)
    by_frame: dict[str, list[BoxRecord]] = {}
    for record in records:
        if record.kind == PLAYER:
            by_frame.setdefault(record.frame_path, []).append(record)
    sizes = frame_sizes(list(by_frame), "negatives")
    negatives: list[BoxRecord] = []
    failed = 0
    for frame_path, frame_players in by_frame.items():
        players = sorted(frame_players, key=lambda r: (r.row, r.x, r.y, r.w, r.h, r.label))
        boxes = np.array([(r.x, r.y, r.w, r.h) for r in players], dtype=np.int64)
        rng = frame_rng(seed, players[0])
        size = sizes[frame_path]
        backgrounds, bg_failed = _backgrounds(
            rng, boxes, size, num_bg_per_frame, max_background_iou
        )
        partials, partial_failed = _partials(rng, boxes, size, num_partial_per_box, partial_iou)
        failed += bg_failed + partial_failed
        first = players[0]
        for x, y, w, h in backgrounds:
            negatives.append(_negative(first, (x, y, w, h), BACKGROUND, row=-1))
        for index, (x, y, w, h) in partials:
            negatives.append(_negative(players[index], (x, y, w, h), PARTIAL, players[index].row))
    if failed:
        warnings.warn(
            f"negatives: {failed} boxes could not be placed within their IoU limits "
            f"({len(negatives)} placed)",
            stacklevel=2,
        )
    return negatives


def _negative(player: BoxRecord, box: Sequence[int], kind: str, row: int) -> BoxRecord:
    x, y, w, h = (int(v) for v in box)
    return BoxRecord(
        frame_path=player.frame_path,
        x=x,
        y=y,
        w=w,
        h=h,
        label=UNKNOWN,
        quarter=player.quarter,
        angle=player.angle,
        session=player.session,
        frame=player.frame,
        row=row,
        kind=kind,
    )


def write_negatives(records: Sequence[BoxRecord], path: Path) -> None:
    """Writes negatives to a CSV atomically (columns :data:`NEGATIVE_COLUMNS`).

    Args:
        records: Negative boxes.
        path: The CSV.
    """
    with atomic_path(Path(path)) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(NEGATIVE_COLUMNS)
        writer.writerows(
            (r.quarter, r.angle, r.session, r.frame, r.x, r.y, r.w, r.h, r.kind, r.row)
            for r in records
        )


def negatives(
    train_meta: Path,
    img_root: Path,
    output: Path,
    num_bg_per_frame: int = 1,
    num_partial_per_box: int = 1,
    max_background_iou: float = 0.1,
    partial_iou: tuple[float, float] = (0.1, 0.5),
    seed: int = 0,
    frame_pattern: str = DEFAULT_FRAME_PATTERN,
) -> Path:
    """Generate background and partial negative boxes for a re-identification meta CSV.

    Args:
        train_meta: The meta CSV (``quarter, angle, session, frame, x, y, w, h, label_id``).
        img_root: Folder of the full frames.
        output: The negatives CSV to write.
        num_bg_per_frame: Background boxes per frame (overlapping no player).
        num_partial_per_box: Partial boxes per player box.
        max_background_iou: Largest IoU of a background box with any player.
        partial_iou: ``(low, high)`` IoU of a partial box with its player.
        seed: Seed of the random boxes.
        frame_pattern: File name of a frame from its ``quarter, angle, session, frame``.

    Returns:
        The path of the negatives CSV.
    """
    train_meta, output = Path(train_meta), Path(output)
    players = fit_boxes(
        read_meta(train_meta, Path(img_root), frame_pattern), "clip", train_meta.name
    )
    boxes = generate_negatives(
        players, num_bg_per_frame, num_partial_per_box, max_background_iou, partial_iou, seed
    )
    write_negatives(boxes, output)
    backgrounds = sum(r.kind == BACKGROUND for r in boxes)
    frames = len({r.frame_path for r in players})
    print(
        f"{train_meta.name}: {backgrounds} background and {len(boxes) - backgrounds} partial "
        f"boxes for {frames} frames -> {output}"
    )
    return output


def missing_negatives_message(
    path: Path, train_meta: Path | None = None, img_root: Path | None = None
) -> str:
    """The message of a missing negatives CSV, with the command that creates it.

    Args:
        path: The missing CSV.
        train_meta: The meta CSV, when known.
        img_root: The frame folder, when known.

    Returns:
        One line.
    """
    return (
        f"{path} not found; create it with `neo data negatives --train_meta "
        f"{train_meta or '<train meta CSV>'} --img_root {img_root or '<image folder>'} "
        f"--output {path}`"
    )


def load_negatives_from_csv(
    path: Path, img_root: Path | None = None, frame_pattern: str = DEFAULT_FRAME_PATTERN
) -> list[BoxRecord]:
    """Reads a negatives CSV written by ``neo data negatives``.

    Args:
        path: The negatives CSV.
        img_root: Folder of the frames; None for frame paths relative to the current folder.
        frame_pattern: File name of a frame from its ``quarter, angle, session, frame``.

    Returns:
        The negative boxes (label -1, ``row`` the source row of a partial box).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(missing_negatives_message(path, img_root=img_root))
    build = frame_path_builder(img_root, frame_pattern, path)
    records = []
    append = records.append
    columns = ("session", "frame", "x", "y", "w", "h", "source_row")
    for line, values in open_csv_rows(path, NEGATIVE_COLUMNS):
        quarter, angle, session, frame, x, y, w, h, kind, row = values
        kind = kind.strip()
        if kind not in NEGATIVE_KINDS:
            raise DatasetError(
                f"{path}: line {line}: kind {kind!r} is not one of {', '.join(NEGATIVE_KINDS)}"
            )
        numbers = (session, frame, x, y, w, h, row)
        try:  # the common case, fast; parse_integer names the bad value otherwise
            integers = tuple(map(int, numbers))
        except ValueError:
            integers = tuple(parse_integer(v, path, line, c) for v, c in zip(numbers, columns))
        session_number, frame_number, left, top, width, height, source_row = integers
        if width <= 0 or height <= 0:
            raise DatasetError(f"{path}: line {line}: box with w {w} and h {h}; both must be > 0")
        quarter, angle = quarter.strip(), angle.strip()
        append(
            BoxRecord(
                frame_path=build(quarter, angle, session_number, frame_number),
                x=left,
                y=top,
                w=width,
                h=height,
                label=UNKNOWN,
                quarter=quarter,
                angle=angle,
                session=session_number,
                frame=frame_number,
                row=source_row,
                kind=kind,
            )
        )
    return records
