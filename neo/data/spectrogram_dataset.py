"""Spectrogram PNG + ``_bboxes.json`` folders (written by ``neo data spectrogram``) as a dataset.

A dataset folder holds run folders (``YYYYMMDD_HHMMSS/``) or the files directly. Every
``<rec>_<NNN>_bboxes.json`` names its image; ``manifest.json`` beside them, when present, gives the
recording of each image, otherwise the recording is the file stem without its ``_<NNN>`` suffix.

Problems are collected in a :class:`~neo.data.problems.ProblemReport`: a malformed JSON, a missing
image, an empty or unknown label, or a malformed box is an error naming the file; a box reaching
outside the image is clipped, and a box with no area after clipping or with swapped corners
(negative size) is dropped, all counted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from neo.data.detection_dataset import Target, image_to_tensor, make_target
from neo.data.images import read_image
from neo.data.problems import DatasetError, ProblemReport
from neo.data.seeding import SampleKey, StreamSeed, keyed
from neo.data.transforms import TransformedSample

BBOX_SUFFIX = "_bboxes.json"
_CHUNK_SUFFIX = re.compile(r"_\d+$")


@dataclass
class SpectrogramRecord:
    """One labelled spectrogram image.

    Attributes:
        json_path: its ``_bboxes.json`` file.
        image_path: its PNG.
        recording: recording (group) name.
        width: image width in pixels.
        height: image height in pixels.
        boxes: (N, 4) float32 xyxy boxes in pixels, clipped.
        names: label name of each box.
        image_id: 1-based id, unique within the data module.
        labels: (N,) int64 training labels, set once the label map is known.
    """

    json_path: Path
    image_path: Path
    recording: str
    width: int
    height: int
    boxes: np.ndarray
    names: list[str]
    image_id: int = 0
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def find_box_files(roots: list[Path]) -> list[Path]:
    """Every ``*_bboxes.json`` directly in a root or in its subfolders (one level), sorted."""
    found: set[Path] = set()
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(
                f"{root}: dataset folder not found (make one with `neo data spectrogram "
                f"--input REC.sigmf-meta --out {root}`)"
            )
        found.update(root.glob(f"*{BBOX_SUFFIX}"))
        found.update(p for p in root.glob(f"*/*{BBOX_SUFFIX}") if not p.parent.name.startswith("."))
    if not found:
        raise DatasetError(f"{', '.join(map(str, roots))}: no *{BBOX_SUFFIX} files found")
    return sorted(found)


def _manifest_recordings(folder: Path, report: ProblemReport) -> dict[str, str]:
    path = folder / "manifest.json"
    if not path.is_file():
        return {}
    try:
        chunks = json.loads(path.read_text())["chunks"]
        return {str(c["image"]): str(c["recording"]) for c in chunks}
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        report.add("malformed manifest", str(path), f"ignored ({e}); recordings taken from names")
        return {}


def _read_record(
    json_path: Path, recordings: dict[str, str], labels: set[str] | None, report: ProblemReport
) -> SpectrogramRecord | None:
    name = str(json_path)
    try:
        data = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        report.add("malformed JSON", name, f"malformed JSON ({e})", fatal=True)
        return None
    try:
        image_name = str(data["image"])
        width, height = int(data["width"]), int(data["height"])
        entries = data["bboxes"]
        if not isinstance(entries, list) or width < 1 or height < 1:
            raise TypeError("'bboxes' must be a list and width/height positive")
    except (KeyError, TypeError, ValueError) as e:
        report.add(
            "malformed JSON", name, f"needs image, width, height and bboxes ({e})", fatal=True
        )
        return None
    image_path = json_path.parent / image_name
    if not image_path.is_file():
        report.add("missing image", name, f"image {image_name} not found", fatal=True)
        return None
    boxes, names, ok = [], [], True
    for i, entry in enumerate(entries):
        try:
            label = entry["label"]
            box = [float(entry[k]) for k in ("x_min", "y_min", "x_max", "y_max")]
        except (KeyError, TypeError, ValueError):
            report.add(
                "malformed box", name, f"box {i} needs label, x_min, y_min, x_max, y_max", True
            )
            ok = False
            continue
        if not isinstance(label, str) or not label.strip():
            report.add("empty label", name, f"box {i} has an empty label", fatal=True)
            ok = False
            continue
        if labels is not None and label not in labels:
            report.add("unknown label", name, f"box {i} has unknown label {label!r}", fatal=True)
            ok = False
            continue
        x0, y0, x1, y1 = box
        if x1 < x0 or y1 < y0:
            report.add(
                "negative box size", name, f"box {i} has x_max < x_min or y_max < y_min (dropped)"
            )
            continue
        clipped = [
            min(max(x0, 0.0), width),
            min(max(y0, 0.0), height),
            min(max(x1, 0.0), width),
            min(max(y1, 0.0), height),
        ]
        if clipped[2] - clipped[0] <= 0 or clipped[3] - clipped[1] <= 0:
            report.add("zero-size box dropped", name, f"box {i} has no area inside the image")
            continue
        if clipped != box:
            report.add("box clipped to image", name, f"box {i} reached outside the image")
        boxes.append(clipped)
        names.append(label)
    if not ok:
        return None
    recording = recordings.get(image_name) or _CHUNK_SUFFIX.sub("", Path(image_name).stem)
    return SpectrogramRecord(
        json_path,
        image_path,
        recording,
        width,
        height,
        np.asarray(boxes, np.float32).reshape(-1, 4),
        names,
    )


def read_records(
    roots: list[Path], labels: list[str] | None = None
) -> tuple[list[SpectrogramRecord], ProblemReport]:
    """Reads every box file under ``roots``; numbers images 1..N in path order.

    Args:
        roots: dataset folders.
        labels: allowed label names; None allows every label found.

    Returns:
        The usable records and the report of all problems.
    """
    report = ProblemReport()
    allowed = set(labels) if labels is not None else None
    manifests: dict[Path, dict[str, str]] = {}
    records = []
    for json_path in find_box_files(roots):
        folder = json_path.parent
        if folder not in manifests:
            manifests[folder] = _manifest_recordings(folder, report)
        record = _read_record(json_path, manifests[folder], allowed, report)
        if record is not None:
            record.image_id = len(records) + 1
            records.append(record)
    return records, report


class SquareResize:
    """Resizes a spectrogram to ``size`` × ``size`` with optional random time (horizontal) flip.

    The time axis may be flipped: a burst reversed in time keeps its band and duration (only a
    chirp's sweep direction reverses). Frequency is never flipped, since that would move every
    signal to the mirrored frequency.

    The flips are reseeded in each DataLoader worker and each epoch whose workers start afresh
    (see :mod:`neo.data.seeding`), so workers do not repeat each other's flips.

    Args:
        size: output side in pixels.
        time_flip_prob: probability of a time flip (training only; 0 for evaluation).
        seed: random seed of the flips; None derives it from the run seed (``seed_everything``).
    """

    def __init__(self, size: int, time_flip_prob: float = 0.0, seed: int | None = None) -> None:
        if size < 32:
            raise ValueError(f"image_size must be at least 32, got {size}")
        self.size = size
        self.time_flip_prob = time_flip_prob
        self._stream_seed = StreamSeed(seed)
        self._rng = np.random.default_rng(self._stream_seed.initial())

    def __call__(
        self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray
    ) -> TransformedSample:
        """Resize (area interpolation) and maybe flip one sample; boxes follow exactly."""
        entropy = self._stream_seed.update()
        if entropy is not None:
            self._rng = np.random.default_rng(entropy)
        height, width = image.shape[:2]
        sx, sy = self.size / width, self.size / height
        if (height, width) != (self.size, self.size):
            image = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
        boxes = boxes.astype(np.float32) * np.array([sx, sy, sx, sy], np.float32)
        offset_x = 0.0
        if self.time_flip_prob > 0 and self._rng.random() < self.time_flip_prob:
            image = np.ascontiguousarray(image[:, ::-1])
            boxes = np.stack(
                [self.size - boxes[:, 2], boxes[:, 1], self.size - boxes[:, 0], boxes[:, 3]], 1
            ).reshape(-1, 4)
            sx, offset_x = -sx, float(self.size)
        return TransformedSample(image, boxes, labels, (sx, sy), (offset_x, 0.0))


class SpectrogramDataset(Dataset):
    """Grayscale spectrograms (duplicated to 3 channels) with their boxes.

    Args:
        records: the images of one split.
        transform: resize (and flip) applied to every sample.
    """

    def __init__(self, records: list[SpectrogramRecord], transform: SquareResize) -> None:
        self.records = records
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item: int | SampleKey) -> tuple[torch.Tensor, Target]:
        with keyed(item) as i:
            record = self.records[i]
            image = read_image(
                record.image_path, (record.height, record.width), str(record.json_path)
            )
            sample = self.transform(image, record.boxes, record.labels)
        target = make_target(sample, record.image_id, (record.height, record.width))
        target["file_name"] = str(record.image_path)
        return image_to_tensor(sample.image), target


def coco_ground_truth(records: list[SpectrogramRecord], categories: list[dict[str, Any]]) -> dict:
    """COCO ground truth of ``records`` in original pixels; label ``i`` is ``categories[i]``."""
    category_ids = [int(c["id"]) for c in categories]
    images, annotations = [], []
    for record in records:
        images.append(
            {
                "id": record.image_id,
                "file_name": str(record.image_path),
                "width": record.width,
                "height": record.height,
            }
        )
        for box, label in zip(record.boxes.tolist(), record.labels.tolist()):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": record.image_id,
                    "category_id": category_ids[int(label)],
                    "bbox": [box[0], box[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    return {"images": images, "annotations": annotations, "categories": categories}
