"""Pre-cropped box images (``neo data crops``): every box of a meta CSV cut out of its frame once.

Crops are named from their frame and box, so a second run finds the crops already written and
neither decodes their frames nor writes them again.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import cv2

from neo.data.problems import DatasetError
from neo.data.reid.meta import (
    DEFAULT_FRAME_PATTERN,
    check_bbox_mode,
    fit_box,
    frame_sizes,
    open_csv_rows,
    parse_integer,
    path_inside,
    read_meta,
    warn_fitted,
)
from neo.data.reid.records import KINDS, BoxRecord
from neo.utils.atomic import atomic_path

TABLE_COLUMNS = (
    "row",
    "kind",
    "quarter",
    "angle",
    "session",
    "frame",
    "x",
    "y",
    "w",
    "h",
    "label_id",
    "frame_path",
    "crop_path",
)
JPEG_QUALITY = 95
IMAGE_FORMATS = ("jpg", "png")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _safe(text: str) -> str:
    """``text`` usable in a file name; a short hash keeps altered names distinct."""
    cleaned = _UNSAFE.sub("-", text)
    if cleaned == text:
        return text
    return f"{cleaned}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def crop_name(record: BoxRecord, image_format: str = "jpg") -> str:
    """The file name of a box's crop, unique per (frame, kind, box) and independent of folders.

    Args:
        record: The box.
        image_format: ``jpg`` or ``png`` (the extension).

    Returns:
        ``<quarter>__<angle>__<session>__<frame>__<kind>__<x>_<y>_<w>_<h>.<ext>`` (the frame's
        stem in front instead when the box has no quarter and angle).
    """
    if record.quarter or record.angle:
        frame = (
            f"{_safe(record.quarter)}__{_safe(record.angle)}__"
            f"{record.session:02d}__{record.frame:02d}"
        )
    else:
        frame = _safe(Path(record.frame_path).stem)
    box = f"{record.x}_{record.y}_{record.w}_{record.h}"
    return f"{frame}__{record.kind}__{box}.{image_format}"


@dataclass(frozen=True)
class CropCounts:
    """What one crop run did.

    Attributes:
        written: Crops written now.
        existing: Crops already there (frames not decoded for them).
        dropped: Boxes past the frame dropped (or clipped empty).
    """

    written: int
    existing: int
    dropped: int


def _encode(image_format: str) -> tuple[str, list[int]]:
    if image_format == "jpg":
        return ".jpg", [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    return ".png", []


def _crop_frame(task: tuple[str, list[tuple[int, int, int, int, str]], str]) -> int:
    """Decodes one frame and writes its crops atomically; returns the number written."""
    frame_path, boxes, image_format = task
    image = cv2.imread(frame_path, cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"{frame_path}: cannot be decoded as an image; replace the file")
    extension, params = _encode(image_format)
    for x, y, w, h, out_path in boxes:
        ok, encoded = cv2.imencode(extension, image[y : y + h, x : x + w], params)
        if not ok:
            raise OSError(f"{out_path}: could not encode the crop")
        with atomic_path(Path(out_path)) as tmp:
            tmp.write_bytes(encoded.tobytes())
    return len(boxes)


def _worker_count(workers: int, tasks: int) -> int:
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if workers == 0:
        workers = min(os.cpu_count() or 1, 8)
    return max(1, min(workers, tasks))


def crop_records(
    records: Sequence[BoxRecord],
    out_dir: Path,
    bbox_mode: Literal["drop", "clip"] = "drop",
    workers: int = 0,
    image_format: Literal["jpg", "png"] = "jpg",
    source: str = "meta",
) -> tuple[list[BoxRecord], CropCounts]:
    """Like :func:`write_crops`, also counting the crops written, found and dropped.

    Args:
        records: Boxes (players and/or negatives).
        out_dir: Folder of the crops.
        bbox_mode: ``drop`` boxes past the frame or ``clip`` them.
        workers: Processes decoding frames; 0 for ``min(cpu count, 8)``, 1 for in-process.
        image_format: ``jpg`` (quality 95) or ``png``.
        source: Name of the CSV the boxes come from (for messages).

    Returns:
        The boxes kept with ``crop_path`` set, and the counts.
    """
    check_bbox_mode(bbox_mode)
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    present = set(os.listdir(out_dir))
    # a crop named after the unfitted box exists only if that box was inside its frame
    fitted: list[BoxRecord | None] = list(records)
    unsure = [i for i, r in enumerate(records) if crop_name(r, image_format) not in present]
    sizes = frame_sizes([records[i].frame_path for i in unsure], source)
    clipped = dropped = 0
    for i in unsure:
        box = fit_box(records[i], *sizes[records[i].frame_path], bbox_mode)
        fitted[i] = box
        dropped += box is None
        clipped += box is not None and box is not records[i]
    warn_fitted(source, clipped, dropped, bbox_mode)

    kept = []
    todo: dict[str, list[tuple[int, int, int, int, str]]] = {}
    seen: set[str] = set()
    for r in fitted:
        if r is None:
            continue
        name = crop_name(r, image_format)
        crop_path = os.path.join(out_dir, name)
        if name not in seen and name not in present:
            todo.setdefault(r.frame_path, []).append((r.x, r.y, r.w, r.h, crop_path))
        seen.add(name)
        kept.append(replace(r, crop_path=crop_path))
    tasks = [(frame, boxes, image_format) for frame, boxes in todo.items()]
    count = _worker_count(workers, len(tasks))
    if count == 1:
        written = sum(map(_crop_frame, tasks))
    else:
        with ProcessPoolExecutor(max_workers=count) as pool:
            written = sum(pool.map(_crop_frame, tasks, chunksize=max(1, len(tasks) // count // 4)))
    return kept, CropCounts(written=written, existing=len(seen) - written, dropped=dropped)


def write_crops(
    records: Sequence[BoxRecord],
    out_dir: Path,
    bbox_mode: Literal["drop", "clip"] = "drop",
    workers: int = 0,
    image_format: Literal["jpg", "png"] = "jpg",
) -> list[BoxRecord]:
    """Crops every box out of its frame once (resumable: existing crops are kept as they are).

    Args:
        records: Boxes (players and/or negatives).
        out_dir: Folder of the crops.
        bbox_mode: ``drop`` boxes past the frame or ``clip`` them (see :func:`fit_boxes`).
        workers: Processes decoding frames; 0 for ``min(cpu count, 8)``, 1 for in-process.
        image_format: ``jpg`` (quality 95) or ``png``.

    Returns:
        The boxes kept (fitted to their frames), in order, with ``crop_path`` set.
    """
    return crop_records(records, out_dir, bbox_mode, workers, image_format)[0]


def write_crop_table(records: Sequence[BoxRecord], path: Path) -> None:
    """Writes the CSV mapping each crop to its meta row, atomically.

    Args:
        records: Boxes with ``crop_path`` set.
        path: The CSV; crop paths are stored relative to its folder.
    """
    path = Path(path)
    folder = path.parent
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(TABLE_COLUMNS)
        for r in records:
            if not r.crop_path:
                raise ValueError(f"{path}: box of row {r.row} has no crop_path; crop it first")
            writer.writerow(
                (
                    r.row,
                    r.kind,
                    r.quarter,
                    r.angle,
                    r.session,
                    r.frame,
                    r.x,
                    r.y,
                    r.w,
                    r.h,
                    r.label,
                    r.frame_path,
                    os.path.relpath(r.crop_path, folder),
                )
            )


def read_crop_table(path: Path, crop_root: Path | None = None) -> list[BoxRecord]:
    """Reads a crop table written by :func:`write_crop_table`.

    Args:
        path: The CSV.
        crop_root: Folder the crop paths are relative to; None for the CSV's folder.

    Returns:
        The boxes with ``crop_path`` under ``crop_root``.
    """
    path = Path(path)
    root = Path(crop_root) if crop_root is not None else path.parent
    records = []
    for line, values in open_csv_rows(path, TABLE_COLUMNS):
        row, kind, quarter, angle, session, frame, x, y, w, h, label, frame_path, crop = values
        if kind not in KINDS:
            raise DatasetError(f"{path}: line {line}: unknown kind {kind!r}; expected {KINDS}")
        number = {
            c: parse_integer(v, path, line, c)
            for c, v in zip(
                ("row", "session", "frame", "x", "y", "w", "h", "label_id"),
                (row, session, frame, x, y, w, h, label),
            )
        }
        records.append(
            BoxRecord(
                frame_path=frame_path,
                x=number["x"],
                y=number["y"],
                w=number["w"],
                h=number["h"],
                label=number["label_id"],
                quarter=quarter,
                angle=angle,
                session=number["session"],
                frame=number["frame"],
                row=number["row"],
                kind=kind,
                crop_path=path_inside(root, crop, path),
            )
        )
    return records


def crops(
    meta: Path,
    img_root: Path,
    out: Path,
    bbox_mode: Literal["drop", "clip"] = "drop",
    workers: int = 0,
    image_format: Literal["jpg", "png"] = "jpg",
    frame_pattern: str = DEFAULT_FRAME_PATTERN,
) -> Path:
    """Crop every box of a re-identification meta CSV into out/images/ with out/crops.csv.

    Args:
        meta: The meta CSV (``quarter, angle, session, frame, x, y, w, h, label_id``).
        img_root: Folder of the full frames.
        out: Output folder (resumable: crops already there are kept).
        bbox_mode: ``drop`` boxes past the frame or ``clip`` them.
        workers: Processes decoding frames; 0 for ``min(cpu count, 8)``, 1 for in-process.
        image_format: ``jpg`` (quality 95) or ``png``.
        frame_pattern: File name of a frame from its ``quarter, angle, session, frame``.

    Returns:
        The path of ``crops.csv``.
    """
    start = time.perf_counter()
    meta, out = Path(meta), Path(out)
    records = read_meta(meta, Path(img_root), frame_pattern)
    kept, counts = crop_records(
        records, out / "images", bbox_mode, workers, image_format, meta.name
    )
    table = out / "crops.csv"
    write_crop_table(kept, table)
    print(
        f"{meta.name}: {counts.written} crops written, {counts.existing} already there, "
        f"{counts.dropped} boxes dropped in {time.perf_counter() - start:.1f} s -> {table}"
    )
    return table
