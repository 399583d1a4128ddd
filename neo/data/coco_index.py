"""Reading and cleaning a COCO instances file into per-image arrays."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neo.data.problems import DatasetError, ProblemReport


@dataclass(frozen=True)
class ImageRecord:
    """One image of a COCO split with its cleaned annotations.

    Attributes:
        image_id: COCO image id.
        path: absolute, normalised image path (inside the image root; links not resolved).
        width: width recorded in the annotation file.
        height: height recorded in the annotation file.
        boxes: (N, 4) float32 xyxy boxes in original pixels, clipped to the image.
        labels: (N,) int64 contiguous training labels.
        crowd_boxes: (M, 4) float32 xyxy crowd regions (ignored for training).
    """

    image_id: int
    path: Path
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    crowd_boxes: np.ndarray


@dataclass(frozen=True)
class CocoIndex:
    """A cleaned COCO split.

    Attributes:
        annotation_file: the instances JSON it was read from.
        images: one record per image, in file order.
        categories: COCO categories sorted by id; list position is the contiguous training label.
        ground_truth: the cleaned COCO dict used for evaluation (clipped boxes, bad ones removed).
        report: problems found while reading.
    """

    annotation_file: Path
    images: list[ImageRecord]
    categories: list[dict[str, Any]]
    ground_truth: dict[str, Any]
    report: ProblemReport

    @property
    def class_names(self) -> list[str]:
        """Category names in training-label order."""
        return [str(c.get("name", c["id"])) for c in self.categories]

    @property
    def category_ids(self) -> list[int]:
        """COCO category id of each training label."""
        return [int(c["id"]) for c in self.categories]


def read_json(path: Path) -> Any:
    """Reads a JSON file, turning every failure into a one-line :class:`DatasetError`."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"{path}: annotation file not found") from None
    except json.JSONDecodeError as e:
        raise DatasetError(
            f"{path}: malformed JSON ({e.msg} at line {e.lineno}, column {e.colno})"
        ) from None
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not a UTF-8 text file ({e.reason})") from None


def resolve_inside(root: Path, relative: str) -> Path | None:
    """Returns ``root / relative`` as an absolute path, or None when it escapes ``root``.

    The check is on the normalised path (``..`` collapsed, symbolic links not followed), so an
    image folder of symbolic links, or a symlinked split folder, is accepted, while a name
    climbing out with ``..`` or an absolute path elsewhere is refused.
    """
    root = Path(os.path.abspath(root))
    candidate = Path(os.path.normpath(root / relative))
    if candidate == root or root not in candidate.parents:
        return None
    return candidate


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def load_coco_index(annotation_file: Path, image_root: Path, check_files: bool = True) -> CocoIndex:
    """Reads, validates and cleans one COCO instances file.

    Fatal problems (malformed file, duplicate ids, image paths escaping ``image_root``, missing
    image files) are recorded as errors; fixable ones are recorded as counted warnings: boxes past
    the image are clipped, zero-size and negative-size boxes and annotations with unknown image or
    category ids are dropped. Images without annotations are kept as negatives. Annotation ids
    that are missing, repeated or below 1 (COCO evaluation reads 0 as "unmatched") get new ones.

    Args:
        annotation_file: COCO instances JSON.
        image_root: folder that ``file_name`` entries are relative to; no path may leave it.
        check_files: whether to check that every image file exists.

    Returns:
        The cleaned index; call ``index.report.raise_if_fatal()`` to stop on errors.

    Raises:
        DatasetError: when the file cannot be read at all or lacks the COCO structure.
    """
    annotation_file = Path(annotation_file)
    data = read_json(annotation_file)
    src = str(annotation_file)
    if not isinstance(data, dict):
        raise DatasetError(
            f"{src}: expected a JSON object with 'images', 'annotations', 'categories'"
        )
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetError(f"{src}: missing or invalid '{key}' list")
    raw_annotations = data.get("annotations", [])
    if not isinstance(raw_annotations, list):
        raise DatasetError(f"{src}: 'annotations' must be a list")

    report = ProblemReport()
    categories = _read_categories(data["categories"], src)
    label_of = {int(c["id"]): label for label, c in enumerate(categories)}

    images: dict[int, dict[str, Any]] = {}
    paths: dict[int, Path] = {}
    for entry in data["images"]:
        image = _read_image_entry(entry, src, image_root, report, check_files)
        if image is None:
            continue
        if image["id"] in images:
            report.add(
                "duplicate image id", src, f"image id {image['id']} appears twice", fatal=True
            )
            continue
        images[image["id"]] = image
        paths[image["id"]] = image.pop("_path")

    boxes: dict[int, list[list[float]]] = {i: [] for i in images}
    labels: dict[int, list[int]] = {i: [] for i in images}
    crowds: dict[int, list[list[float]]] = {i: [] for i in images}
    kept_annotations = []
    seen_ids: set[int] = set()
    for ann in raw_annotations:
        cleaned = _clean_annotation(ann, src, images, label_of, report, seen_ids)
        if cleaned is None:
            continue
        kept_annotations.append(cleaned)
    next_id = max(seen_ids, default=0) + 1
    for cleaned in kept_annotations:
        if cleaned["id"] is None:
            cleaned["id"], next_id = next_id, next_id + 1
        seen_ids.add(cleaned["id"])
        x, y, w, h = cleaned["bbox"]
        if cleaned.get("iscrowd", 0):
            crowds[cleaned["image_id"]].append([x, y, x + w, y + h])
        else:
            boxes[cleaned["image_id"]].append([x, y, x + w, y + h])
            labels[cleaned["image_id"]].append(label_of[cleaned["category_id"]])

    records = [
        ImageRecord(
            image_id=i,
            path=paths[i],
            width=img["width"],
            height=img["height"],
            boxes=np.asarray(boxes[i], dtype=np.float32).reshape(-1, 4),
            labels=np.asarray(labels[i], dtype=np.int64),
            crowd_boxes=np.asarray(crowds[i], dtype=np.float32).reshape(-1, 4),
        )
        for i, img in images.items()
    ]
    ground_truth = {
        "images": list(images.values()),
        "annotations": kept_annotations,
        "categories": categories,
    }
    return CocoIndex(annotation_file, records, categories, ground_truth, report)


def _read_categories(raw: list[Any], src: str) -> list[dict[str, Any]]:
    categories = []
    seen: set[int] = set()
    for cat in raw:
        if not isinstance(cat, dict) or _number(cat.get("id")) is None:
            raise DatasetError(f"{src}: category entry without an integer 'id': {cat!r}")
        cid = int(cat["id"])
        if cid in seen:
            raise DatasetError(f"{src}: category id {cid} appears twice")
        seen.add(cid)
        categories.append({"id": cid, "name": str(cat.get("name", cid)), **_extra(cat)})
    if not categories:
        raise DatasetError(f"{src}: 'categories' is empty")
    return sorted(categories, key=lambda c: c["id"])


def _extra(cat: dict[str, Any]) -> dict[str, Any]:
    return {"supercategory": cat["supercategory"]} if "supercategory" in cat else {}


def _read_image_entry(
    entry: Any, src: str, image_root: Path, report: ProblemReport, check_files: bool
) -> dict[str, Any] | None:
    if not isinstance(entry, dict):
        report.add(
            "invalid image entry", src, f"image entry is not an object: {entry!r}", fatal=True
        )
        return None
    image_id, width, height = (_number(entry.get(k)) for k in ("id", "width", "height"))
    file_name = entry.get("file_name")
    if image_id is None or width is None or height is None or not isinstance(file_name, str):
        report.add(
            "invalid image entry",
            src,
            f"image entry needs integer id, width, height and a file_name: {entry!r}",
            fatal=True,
        )
        return None
    if width <= 0 or height <= 0:
        report.add(
            "invalid image entry", src, f"image {file_name} has size {width}x{height}", fatal=True
        )
        return None
    path = resolve_inside(image_root, file_name)
    if path is None:
        report.add(
            "path escapes data root",
            src,
            f"image path {file_name!r} leaves the data root {image_root}",
            fatal=True,
        )
        return None
    if check_files and not path.is_file():
        report.add(
            "missing image", str(path), f"image file not found (listed in {src})", fatal=True
        )
        return None
    return {
        "id": int(image_id),
        "file_name": file_name,
        "width": int(width),
        "height": int(height),
        "_path": path,
    }


def _clean_annotation(
    ann: Any,
    src: str,
    images: dict[int, dict[str, Any]],
    label_of: dict[int, int],
    report: ProblemReport,
    seen_ids: set[int],
) -> dict[str, Any] | None:
    if not isinstance(ann, dict):
        report.add("invalid annotation", src, f"annotation is not an object: {ann!r}")
        return None
    ann_id = ann.get("id")
    image_id = _number(ann.get("image_id"))
    if image_id is None or int(image_id) not in images:
        report.add(
            "unknown image id",
            src,
            f"annotation {ann_id} refers to unknown image id {ann.get('image_id')!r}",
        )
        return None
    image = images[int(image_id)]
    category_id = _number(ann.get("category_id"))
    if category_id is None or int(category_id) not in label_of:
        report.add(
            "unknown category id",
            src,
            f"annotation {ann_id} of image {image['file_name']} has unknown category id "
            f"{ann.get('category_id')!r}",
        )
        return None
    bbox = ann.get("bbox")
    coords = [_number(v) for v in bbox] if isinstance(bbox, list) and len(bbox) == 4 else None
    if coords is None or any(v is None for v in coords):
        report.add(
            "invalid box",
            src,
            f"annotation {ann_id} of image {image['file_name']} has bbox {bbox!r}",
        )
        return None
    x, y, w, h = coords
    if w < 0 or h < 0:
        report.add(
            "negative box size",
            src,
            f"annotation {ann_id} of image {image['file_name']} has a {w}x{h} box (dropped)",
        )
        return None
    if w == 0 or h == 0:
        report.add(
            "zero-size box",
            src,
            f"annotation {ann_id} of image {image['file_name']} has a {w}x{h} box (dropped)",
        )
        return None
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x + w, float(image["width"])), min(y + h, float(image["height"]))
    if (x0, y0, x1, y1) != (x, y, x + w, y + h):
        if x1 <= x0 or y1 <= y0:
            report.add(
                "box outside image",
                src,
                f"annotation {ann_id} of image {image['file_name']} lies outside the image "
                "(dropped)",
            )
            return None
        report.add(
            "box clipped",
            src,
            f"annotation {ann_id} of image {image['file_name']} extends past the image (clipped)",
        )
    new_id = int(ann_id) if _number(ann_id) is not None else None
    if new_id is not None and (new_id < 1 or new_id in seen_ids):
        new_id = None  # COCO evaluation reads annotation id 0 as "no match"
    if new_id is not None:
        seen_ids.add(new_id)
    area = _number(ann.get("area"))
    return {
        "id": new_id,
        "image_id": int(image_id),
        "category_id": int(category_id),
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "area": area if area is not None and area > 0 else (x1 - x0) * (y1 - y0),
        "iscrowd": 1 if ann.get("iscrowd", 0) else 0,
    }
