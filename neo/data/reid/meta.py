"""The re-identification meta CSV: one row per player box in a full frame.

Columns ``quarter, angle, session, frame, x, y, w, h, label_id`` (extra columns are ignored);
``label_id`` is -1 or empty for unlabelled boxes; ``x, y, w, h`` are pixels (floats are rounded).
The frame file of a row is ``img_root / frame_pattern.format(quarter=..., angle=..., session=...,
frame=...)``.
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from operator import itemgetter
from pathlib import Path
from typing import Literal

from PIL import Image

from neo.data.problems import DatasetError
from neo.data.reid.records import PLAYER, UNKNOWN, BoxRecord

REQUIRED_COLUMNS = ("quarter", "angle", "session", "frame", "x", "y", "w", "h", "label_id")
DEFAULT_FRAME_PATTERN = "{quarter}__{angle}__{session:02d}__{frame:02d}.jpg"
BBOX_MODES = ("drop", "clip")


def open_csv_rows(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, tuple[str, ...]]]:
    """The data rows of a CSV with the values of ``columns`` (at least two), in that order.

    Args:
        path: CSV file with a header line.
        columns: Columns that must be present.

    Yields:
        ``(line number in the file, (value of each column))`` for every non-empty row; the
        values are not stripped (``int`` and ``float`` ignore surrounding spaces).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [name.strip() for name in next(reader, [])]
        missing = [c for c in columns if c not in header]
        if missing:
            raise DatasetError(
                f"{path}: missing column(s) {', '.join(missing)} (header: {', '.join(header)})"
            )
        pick = itemgetter(*[header.index(c) for c in columns])
        for values in reader:
            if not values:
                continue
            try:
                picked = pick(values)
            except IndexError:
                raise DatasetError(
                    f"{path}: line {reader.line_num}: {len(values)} values, expected {len(header)}"
                ) from None
            yield reader.line_num, picked


def parse_number(value: str, path: Path, line: int, column: str) -> float:
    """``value`` as a float; a one-line :class:`DatasetError` naming file, line, column if not.

    Args:
        value: Text of one CSV cell.
        path: The CSV (for the message).
        line: Line number in the CSV.
        column: Column name.

    Returns:
        The number.
    """
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise DatasetError(f"{path}: line {line}: column {column}: {value!r} is not a number")
    return number


def parse_integer(value: str, path: Path, line: int, column: str) -> int:
    """``value`` as an integer (``"3"`` or ``"3.0"``); a :class:`DatasetError` otherwise.

    Args:
        value: Text of one CSV cell.
        path: The CSV (for the message).
        line: Line number in the CSV.
        column: Column name.

    Returns:
        The integer.
    """
    try:
        return int(value)
    except ValueError:
        number = parse_number(value, path, line, column)
        if not number.is_integer():
            raise DatasetError(
                f"{path}: line {line}: column {column}: {value!r} is not an integer"
            ) from None
        return int(number)


def path_inside(root: Path | None, relative: str, source: Path | str) -> str:
    """``root / relative`` as text, after checking that ``relative`` cannot leave ``root``.

    The check is on the text (no file system access): ``relative`` must not be absolute and
    must not lead out through ``..``.

    Args:
        root: The data folder; None for a path relative to the current folder.
        relative: A path read from a CSV or made from its values.
        source: The CSV (for the message).

    Returns:
        The joined path.
    """
    normal = os.path.normpath(relative)
    if (
        not relative
        or os.path.isabs(relative)
        or os.path.splitdrive(relative)[0]
        or normal == os.pardir
        or normal.startswith(os.pardir + os.sep)
    ):
        raise DatasetError(
            f"{source}: path {relative!r} leaves the data folder {root}; fix the CSV or the "
            "pattern that makes it"
        )
    return relative if root is None else str(Path(root) / relative)


def frame_path_builder(
    img_root: Path | None, frame_pattern: str, source: Path
) -> Callable[[str, str, int, int], str]:
    """A function giving the frame path of ``(quarter, angle, session, frame)``, cached.

    The relative path from ``frame_pattern`` is checked once per frame: it must stay inside
    ``img_root`` (no absolute path, no ``..`` leading out).

    Args:
        img_root: Folder of the frames; None for paths relative to the current folder.
        frame_pattern: Format string with the fields ``quarter, angle, session, frame``.
        source: The CSV the values come from (for messages).

    Returns:
        ``build(quarter, angle, session, frame) -> frame path``.
    """
    cache: dict[tuple[str, str, int, int], str] = {}

    def build(quarter: str, angle: str, session: int, frame: int) -> str:
        key = (quarter, angle, session, frame)
        found = cache.get(key)
        if found is not None:
            return found
        try:
            relative = frame_pattern.format(
                quarter=quarter, angle=angle, session=session, frame=frame
            )
        except (KeyError, IndexError, ValueError) as e:
            raise DatasetError(
                f"{source}: frame_pattern {frame_pattern!r} cannot be filled ({e!r}); "
                "use the fields quarter, angle, session, frame"
            ) from None
        found = path_inside(img_root, relative, source)
        cache[key] = found
        return found

    return build


def read_meta(
    path: Path, img_root: Path, frame_pattern: str = DEFAULT_FRAME_PATTERN
) -> list[BoxRecord]:
    """Reads a meta CSV into one :class:`BoxRecord` (kind ``player``) per row.

    Args:
        path: The meta CSV.
        img_root: Folder of the full frames.
        frame_pattern: File name of a frame from its ``quarter, angle, session, frame``.

    Returns:
        The boxes in file order, ``row`` being the 0-based data row.
    """
    path = Path(path)
    build = frame_path_builder(img_root, frame_pattern, path)
    records = []
    append = records.append
    for row, (line, values) in enumerate(open_csv_rows(path, REQUIRED_COLUMNS)):
        quarter, angle, session, frame, x, y, w, h, label = values
        try:  # the common case, fast; parse_row names the bad value otherwise
            numbers = (
                int(session),
                int(frame),
                round(float(x)),
                round(float(y)),
                round(float(w)),
                round(float(h)),
                int(label) if label.strip() else UNKNOWN,
            )
        except (ValueError, OverflowError):
            numbers = parse_row(values, path, line)
        session_number, frame_number, left, top, width, height, identity = numbers
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
                label=identity if identity >= 0 else UNKNOWN,
                quarter=quarter,
                angle=angle,
                session=session_number,
                frame=frame_number,
                row=row,
                kind=PLAYER,
            )
        )
    return records


def parse_row(
    values: Sequence[str], path: Path, line: int
) -> tuple[int, int, int, int, int, int, int]:
    """The numbers of one meta row, checked one by one (the slow path naming a bad value).

    Args:
        values: The row's values in the order of :data:`REQUIRED_COLUMNS`.
        path: The CSV (for messages).
        line: Line number in the CSV.

    Returns:
        ``session, frame, x, y, w, h, label`` (coordinates rounded, label -1 when empty).
    """
    _, _, session, frame, x, y, w, h, label = values
    coordinates = [round(parse_number(v, path, line, c)) for v, c in zip((x, y, w, h), "xywh")]
    return (
        parse_integer(session, path, line, "session"),
        parse_integer(frame, path, line, "frame"),
        *coordinates,
        parse_integer(label, path, line, "label_id") if label.strip() else UNKNOWN,
    )


def frame_size(path: Path | str) -> tuple[int, int]:
    """``(width, height)`` of an image, read from its header without decoding it.

    Args:
        path: The image file.

    Returns:
        Width and height in pixels.
    """
    with Image.open(path) as image:
        return image.size


def frame_sizes(frame_paths: Sequence[str], source: str) -> dict[str, tuple[int, int]]:
    """The size of every distinct frame, each read once.

    Args:
        frame_paths: Frame files (repeats allowed).
        source: Name of the CSV the frames come from (for the message).

    Returns:
        ``{frame path: (width, height)}``.

    Raises:
        DatasetError: Some frame files do not exist (names the first and the count).
    """
    unique = list(dict.fromkeys(frame_paths))
    missing = [p for p in unique if not os.path.isfile(p)]
    if missing:
        raise DatasetError(
            f"{source}: frame file missing: {missing[0]} ({len(missing)} of {len(unique)} "
            "frames missing); check img_root and frame_pattern"
        )
    sizes = {}
    for frame_path in unique:
        try:
            sizes[frame_path] = frame_size(frame_path)
        except OSError as e:
            raise DatasetError(f"{source}: frame {frame_path} cannot be read ({e})") from None
    return sizes


def fit_box(
    record: BoxRecord, width: int, height: int, bbox_mode: Literal["drop", "clip"]
) -> BoxRecord | None:
    """``record`` fitted to a ``width`` x ``height`` frame.

    Args:
        record: A box.
        width: Frame width.
        height: Frame height.
        bbox_mode: ``drop`` a box past the frame, or ``clip`` it to the frame.

    Returns:
        The box itself when inside, the clipped box, or None when dropped (or clipped empty).
    """
    x0, y0, x1, y1 = record.x, record.y, record.x + record.w, record.y + record.h
    if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
        return record
    if bbox_mode == "drop":
        return None
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    return replace(record, x=x0, y=y0, w=x1 - x0, h=y1 - y0)


def check_bbox_mode(bbox_mode: str) -> None:
    """Raises ``ValueError`` unless ``bbox_mode`` is ``drop`` or ``clip``."""
    if bbox_mode not in BBOX_MODES:
        raise ValueError(f"bbox_mode must be one of {BBOX_MODES}, got {bbox_mode!r}")


def warn_fitted(source: str, clipped: int, dropped: int, bbox_mode: str) -> None:
    """Emits one warning counting the boxes past the frame (nothing when there are none).

    Args:
        source: Name of the CSV the boxes come from.
        clipped: Boxes clipped to the frame.
        dropped: Boxes dropped (past the frame, or clipped empty).
        bbox_mode: The mode used.
    """
    if bbox_mode == "drop" and dropped:
        warnings.warn(f"{source}: {dropped} boxes past the frame dropped", stacklevel=3)
    elif clipped or dropped:
        empty = f", {dropped} clipped empty and dropped" if dropped else ""
        warnings.warn(
            f"{source}: {clipped + dropped} boxes past the frame clipped (bbox_mode clip){empty}",
            stacklevel=3,
        )


def fit_boxes(
    records: Sequence[BoxRecord], bbox_mode: Literal["drop", "clip"], source: str
) -> list[BoxRecord]:
    """Boxes past their frame dropped or clipped to it, with one counted warning.

    Args:
        records: Boxes (frame sizes are read once per frame from the image headers).
        bbox_mode: ``drop`` boxes past the frame, or ``clip`` them (empty ones are dropped).
        source: Name of the CSV the boxes come from (for messages).

    Returns:
        The boxes kept, in order.
    """
    check_bbox_mode(bbox_mode)
    sizes = frame_sizes([r.frame_path for r in records], source)
    kept = []
    clipped = dropped = 0
    for record in records:
        fitted = fit_box(record, *sizes[record.frame_path], bbox_mode)
        if fitted is None:
            dropped += 1
            continue
        clipped += fitted is not record
        kept.append(fitted)
    warn_fitted(source, clipped, dropped, bbox_mode)
    return kept
