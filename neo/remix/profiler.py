"""Remix's profiler: each detector's latency per batch and its accuracy per object-size bin.

The accuracy vector holds one AP (IoU 0.5) per size bin of :mod:`neo.remix.bins`, measured by
the COCO evaluator (faster-coco-eval, pycocotools-identical) with its area ranges set to the 12
bins: ground truth outside a bin is ignored, and so are unmatched detections outside it. An
object's bin is its box area **in the detector's input pixels** (image area x ``scale²`` of the
letterbox), the same size the planner puts an object in when it rescales a block to the input.
Evaluation is class-agnostic unless a label-to-category map is given. A bin without ground
truth takes the value of the nearest bin that has one (the mean of both when two are equally
near), or 0 when no bin has ground truth.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from faster_coco_eval import COCO, COCOeval_faster

from neo.data.coco_index import resolve_inside
from neo.data.images import read_image
from neo.data.problems import DatasetError
from neo.remix.bins import AREA_EDGES, BIN_NAMES, NUM_BINS
from neo.remix.detector import DeployedDetector, Detections, Detector, fit_to_input
from neo.remix.files import Profile, read_json_file, update_profile

# COCO's area test is inclusive at both ends; a finite stand-in for the open last edge
_LARGEST_AREA = 1e12
_AGNOSTIC_CATEGORY = 1
# per image: boxes xyxy (N, 4) in image pixels, category ids (N,), crowd flags (N,)
GroundTruth = tuple[np.ndarray, np.ndarray, np.ndarray]


def _quiet(*_args: Any, **_kwargs: Any) -> None:
    """Swallow faster-coco-eval's progress messages."""


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def measure_latency(
    detector: Detector,
    batch_sizes: Sequence[int] = (1, 2, 4),
    warmup: int = 3,
    runs: int = 20,
    seed: int = 0,
) -> dict[int, float]:
    """Median seconds of one detector call per batch size, on random images at its input size.

    Args:
        detector: the detector.
        batch_sizes: the batch sizes to time.
        warmup: untimed calls before the timed ones, per batch size.
        runs: timed calls per batch size (CUDA is synchronised around each).
        seed: seed of the random images.

    Returns:
        Median seconds per call, by batch size (sorted).

    Raises:
        ValueError: no batch size, a batch size below 1, or ``runs`` below 1.
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    sizes = sorted({int(b) for b in batch_sizes})
    if not sizes or sizes[0] < 1:
        raise ValueError(f"batch sizes must be >= 1, got {list(batch_sizes)}")
    width, height = detector.input_size
    rng = np.random.default_rng(seed)
    latencies: dict[int, float] = {}
    for size in sizes:
        images = rng.integers(0, 256, (size, height, width, 3), dtype=np.uint8)
        for _ in range(warmup):
            detector(images)
        _synchronize()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            detector(images)
            _synchronize()
            times.append(time.perf_counter() - start)
        latencies[size] = float(statistics.median(times))
    return latencies


def detect_frames(detector: Detector, frames: Sequence[np.ndarray]) -> list[Detections]:
    """Runs the detector on each frame letterboxed to its input; boxes back in frame pixels.

    Args:
        detector: the detector.
        frames: uint8 RGB frames (H, W, 3), any size.

    Returns:
        Per frame: boxes xyxy (N, 4) in frame pixels (clipped to the frame), scores, labels.
    """
    results = []
    for frame in frames:
        canvas, scale = fit_to_input(frame, detector.input_size)
        boxes, scores, labels = detector(canvas[None])[0]
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4) / scale
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, frame.shape[1])
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, frame.shape[0])
        results.append(
            (boxes, np.asarray(scores, np.float64).reshape(-1), np.asarray(labels).reshape(-1))
        )
    return results


def fill_empty_bins(values: np.ndarray) -> np.ndarray:
    """Fills bins without a value (negative, COCO's -1) from the nearest bin that has one.

    Args:
        values: per-bin values, negative where undefined.

    Returns:
        A copy where each undefined bin holds its nearest defined neighbour (the mean of the two
        when both sides are equally near), all zeros when no bin is defined.
    """
    values = np.asarray(values, np.float64)
    defined = np.flatnonzero(values >= 0)
    if defined.size == 0:
        return np.zeros_like(values)
    filled = values.copy()
    for index in np.flatnonzero(values < 0):
        distances = np.abs(defined - index)
        nearest = defined[distances == distances.min()]
        filled[index] = float(values[nearest].mean())
    return filled


def _letterbox_scale(width: int, height: int, input_size: tuple[int, int]) -> float:
    return min(input_size[0] / width, input_size[1] / height)


def _xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack(
        [boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1
    )


def binned_ap(
    ground_truth: Sequence[GroundTruth],
    detections: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    scales: Sequence[float],
    iou: float = 0.5,
) -> np.ndarray:
    """COCO AP at one IoU per size bin, objects binned by their area times ``scale²``.

    Args:
        ground_truth: per image, boxes xyxy in image pixels, category ids and crowd flags.
        detections: per image, boxes xyxy in image pixels, scores and category ids.
        scales: per image, the detector's input pixels per image pixel.
        iou: the IoU threshold.

    Returns:
        AP per bin, shape ``(12,)``, ``-1`` where a bin has no ground truth.
    """
    images, annotations, results = [], [], []
    categories: set[int] = set()
    for image_id, (truth, found, scale) in enumerate(zip(ground_truth, detections, scales), 1):
        images.append({"id": image_id, "width": 1, "height": 1})
        gt_boxes, gt_categories, crowd = truth
        for box, category, is_crowd in zip(_xywh(gt_boxes) * scale, gt_categories, crowd):
            categories.add(int(category))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(category),
                    "bbox": [float(v) for v in box],
                    "area": float(box[2] * box[3]),
                    "iscrowd": int(bool(is_crowd)),
                }
            )
        dt_boxes, dt_scores, dt_categories = found
        for box, score, category in zip(_xywh(dt_boxes) * scale, dt_scores, dt_categories):
            categories.add(int(category))
            results.append(
                {
                    "image_id": image_id,
                    "category_id": int(category),
                    "bbox": [float(v) for v in box],
                    "score": float(score),
                }
            )
    if not annotations:
        return np.full(NUM_BINS, -1.0)
    dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c, "name": str(c)} for c in sorted(categories)],
    }
    coco_gt = COCO(dataset, print_function=_quiet)
    coco_dt = coco_gt.loadRes(results) if results else None
    if coco_dt is None:
        return _no_detection_ap(annotations)
    coco_dt.print_function = _quiet
    evaluator = COCOeval_faster(coco_gt, coco_dt, iouType="bbox", print_function=_quiet)
    params = evaluator.params
    edges = [float(v) for v in AREA_EDGES[:-1]] + [_LARGEST_AREA]
    params.areaRng = [[edges[i], edges[i + 1]] for i in range(NUM_BINS)]
    params.areaRngLbl = list(BIN_NAMES)
    params.iouThrs = np.array([float(iou)])
    params.maxDets = [100]
    evaluator.evaluate()
    evaluator.accumulate()
    precision = np.asarray(evaluator.eval["precision"])  # (T=1, R, K, A=12, M=1)
    ap = np.full(NUM_BINS, -1.0)
    for index in range(NUM_BINS):
        values = precision[0, :, :, index, 0]
        if (values > -1).any():
            ap[index] = float(values[values > -1].mean())
    return ap


def _no_detection_ap(annotations: list[dict]) -> np.ndarray:
    """AP 0 in every bin holding a non-crowd object, -1 elsewhere (COCO's rule)."""
    ap = np.full(NUM_BINS, -1.0)
    for ann in annotations:
        if not ann["iscrowd"]:
            for index in range(NUM_BINS):
                low, high = AREA_EDGES[index], AREA_EDGES[index + 1]
                if low <= ann["area"] <= high:
                    ap[index] = 0.0
    return ap


def read_coco_file(coco_annotations: Path | dict) -> tuple[dict, str]:
    """A COCO instances file (or an already read dict) and its name for messages."""
    if isinstance(coco_annotations, dict):
        return coco_annotations, "ground truth"
    path = Path(coco_annotations)
    data = read_json_file(path, missing="COCO annotation file not found")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DatasetError(f"{path}: not a COCO instances file (no 'images' list)")
    return data, str(path)


def read_coco_image(images_root: Path, file_name: str, source: str) -> np.ndarray:
    """An image listed in a COCO file, as RGB uint8; its path must stay inside ``images_root``.

    Raises:
        DatasetError: the path leaves ``images_root``, or the file cannot be decoded.
        FileNotFoundError: the file is missing.
    """
    path = resolve_inside(Path(images_root), file_name)
    if path is None:
        raise DatasetError(
            f"{source}: image {file_name!r} lies outside {images_root}; keep images in it"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image listed in {source} not found")
    return read_image(path, source=source)


def _detection_categories(
    labels: np.ndarray, category_ids: Sequence[int] | None, detector: Detector
) -> np.ndarray:
    labels = np.asarray(labels, np.int64)
    if category_ids is None:
        return np.full(len(labels), _AGNOSTIC_CATEGORY, np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= len(category_ids)):
        raise ValueError(
            f"detector {detector.name!r}: label {int(labels.max())} has no category id "
            f"({len(category_ids)} given)"
        )
    return np.asarray(category_ids, np.int64)[labels]


def accuracy_vector(
    detector: Detector,
    coco_annotations: Path | dict,
    images_root: Path,
    max_images: int | None = None,
    iou: float = 0.5,
    category_ids: Sequence[int] | None = None,
) -> np.ndarray:
    """The detector's AP per size bin on a COCO-format dataset (see the module docstring).

    Args:
        detector: the detector (each image is letterboxed to its input).
        coco_annotations: COCO instances file or dict (``images`` with ``file_name``,
            ``annotations`` with ``bbox`` ``[x, y, w, h]``).
        images_root: the folder the ``file_name`` entries are relative to.
        max_images: evaluate only the first images by id (``None``: all).
        iou: IoU threshold of a match.
        category_ids: dataset category id of each detector label; ``None``: class-agnostic.

    Returns:
        AP per bin, shape ``(12,)``, in ``[0, 1]``, empty bins filled by :func:`fill_empty_bins`.

    Raises:
        FileNotFoundError: the annotation file or an image is missing.
        DatasetError: unreadable annotations or image, or an image path outside ``images_root``.
    """
    data, source = read_coco_file(coco_annotations)
    images = sorted(data["images"], key=lambda image: int(image["id"]))
    if max_images is not None:
        images = images[: max(0, int(max_images))]
    by_image: dict[int, list[dict]] = {int(image["id"]): [] for image in images}
    for ann in data.get("annotations") or []:
        if int(ann["image_id"]) in by_image:
            by_image[int(ann["image_id"])].append(ann)
    truths, found, scales = [], [], []
    for image in images:
        frame = read_coco_image(Path(images_root), str(image["file_name"]), source)
        anns = by_image[int(image["id"])]
        xywh = np.array([a["bbox"] for a in anns], np.float64).reshape(-1, 4)
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)
        gt_categories = np.array(
            [_AGNOSTIC_CATEGORY if category_ids is None else int(a["category_id"]) for a in anns],
            np.int64,
        )
        crowd = np.array([bool(a.get("iscrowd", 0)) for a in anns], bool)
        truths.append((xyxy, gt_categories, crowd))
        boxes, scores, labels = detect_frames(detector, [frame])[0]
        found.append((boxes, scores, _detection_categories(labels, category_ids, detector)))
        scales.append(_letterbox_scale(frame.shape[1], frame.shape[0], detector.input_size))
    return np.clip(fill_empty_bins(binned_ap(truths, found, scales, iou)), 0.0, 1.0)


def accuracy_vector_against(
    detector: Detector,
    oracle: Detector,
    frames: Sequence[np.ndarray],
    oracle_threshold: float = 0.5,
    iou: float = 0.5,
    class_agnostic: bool = True,
) -> np.ndarray:
    """The detector's AP per size bin against an oracle detector's boxes (unlabelled video).

    Args:
        detector: the profiled detector.
        oracle: the accurate detector whose detections scoring ``>= oracle_threshold`` serve as
            ground truth.
        frames: uint8 RGB frames (H, W, 3).
        oracle_threshold: the oracle's score threshold.
        iou: IoU threshold of a match.
        class_agnostic: ignore labels (else a detection must carry the oracle's label).

    Returns:
        AP per bin, shape ``(12,)``, in ``[0, 1]``, empty bins filled by :func:`fill_empty_bins`.
    """
    truths, found, scales = [], [], []
    oracle_results = detect_frames(oracle, frames)
    detector_results = detect_frames(detector, frames)
    for frame, (o_boxes, o_scores, o_labels), (boxes, scores, labels) in zip(
        frames, oracle_results, detector_results
    ):
        keep = o_scores >= oracle_threshold
        o_categories = np.full(int(keep.sum()), _AGNOSTIC_CATEGORY, np.int64)
        categories = np.full(len(labels), _AGNOSTIC_CATEGORY, np.int64)
        if not class_agnostic:
            o_categories = np.asarray(o_labels, np.int64)[keep] + 1
            categories = np.asarray(labels, np.int64) + 1
        truths.append((o_boxes[keep], o_categories, np.zeros(int(keep.sum()), bool)))
        found.append((boxes, scores, categories))
        scales.append(_letterbox_scale(frame.shape[1], frame.shape[0], detector.input_size))
    return np.clip(fill_empty_bins(binned_ap(truths, found, scales, iou)), 0.0, 1.0)


class NNProfiler:
    """Profiles detectors: latency per batch size and the 12-bin accuracy vector.

    Args:
        batch_sizes: batch sizes to time.
        warmup: untimed calls per batch size.
        runs: timed calls per batch size.
        max_images: images of the dataset to evaluate (``None``: all).
    """

    def __init__(
        self,
        batch_sizes: Sequence[int] = (1, 2, 4),
        warmup: int = 3,
        runs: int = 20,
        max_images: int | None = None,
    ) -> None:
        self.batch_sizes = tuple(int(b) for b in batch_sizes)
        self.warmup = warmup
        self.runs = runs
        self.max_images = max_images

    def profile(
        self,
        detector: Detector,
        coco_annotations: Path | dict,
        images_root: Path,
        category_ids: Sequence[int] | None = None,
    ) -> Profile:
        """Profiles one detector.

        Args:
            detector: the detector.
            coco_annotations: COCO instances file or dict.
            images_root: the folder of the images.
            category_ids: dataset category id of each label; ``None``: class-agnostic accuracy.

        Returns:
            Its profile (``latency``: the batch of one, measured even if not asked for).
        """
        sizes = sorted({1, *self.batch_sizes})
        per_batch = measure_latency(detector, sizes, self.warmup, self.runs)
        acc = accuracy_vector(
            detector, coco_annotations, images_root, self.max_images, category_ids=category_ids
        )
        return Profile(
            name=detector.name,
            latency=per_batch[1],
            acc_vector=tuple(float(v) for v in acc),
            input_size=(int(detector.input_size[0]), int(detector.input_size[1])),
            latency_per_batch=per_batch,
        )

    def profile_all(
        self,
        detectors: Sequence[Detector],
        coco_annotations: Path | dict,
        images_root: Path,
        path: Path | None = None,
        category_ids: Sequence[int] | None = None,
    ) -> dict[str, Profile]:
        """Profiles several detectors, adding each to ``profiles.json`` as soon as it is done.

        Args:
            detectors: the detectors (distinct names).
            coco_annotations: COCO instances file or dict (read once).
            images_root: the folder of the images.
            path: ``profiles.json`` to add to or update (``None``: write nothing).
            category_ids: dataset category id of each label; ``None``: class-agnostic accuracy.

        Returns:
            The new profiles by detector name.
        """
        if not isinstance(coco_annotations, dict):
            coco_annotations = read_coco_file(coco_annotations)[0]
        profiles = {}
        for detector in detectors:
            profile = self.profile(detector, coco_annotations, images_root, category_ids)
            profiles[profile.name] = profile
            if path is not None:
                update_profile(Path(path), profile)
        return profiles


def format_profiles(profiles: dict[str, Profile]) -> str:
    """A table: name, input, latency (ms) per batch size and the accuracy vector.

    Args:
        profiles: profiles by name.

    Returns:
        The table's lines joined.
    """
    lines = [f"{'detector':<24}  {'input':>9}  {'ms per batch (size: ms)':<32}  acc_vector"]
    for name, profile in profiles.items():
        size = "-" if profile.input_size is None else "x".join(map(str, profile.input_size))
        batches = profile.latency_per_batch or {1: profile.latency}
        latency = ", ".join(f"{b}: {s * 1000:.2f}" for b, s in sorted(batches.items()))
        acc = "[" + " ".join(f"{v:.2f}" for v in profile.acc_vector) + "]"
        lines.append(f"{name:<24}  {size:>9}  {latency:<32}  {acc}")
    return "\n".join(lines)


def remix_profile(
    models: list[Path],
    annotations: Path,
    images: Path,
    input_sizes: list[tuple[int, int]] | None = None,
    out: Path = Path("profiles.json"),
    batch_sizes: list[int] = [1, 2, 4],  # noqa: B006
    runs: int = 20,
    max_images: int | None = None,
    device: str = "cpu",
    class_agnostic: bool = True,
) -> dict[str, Profile]:
    """Profile detectors' latency per batch and accuracy per object-size bin into profiles.json.

    Args:
        models: neo model files (``.ckpt``, ``.onnx``, ``.engine``, ``.ep``).
        annotations: COCO instances file of the evaluation images.
        images: the folder of those images.
        input_sizes: ``W H`` pairs to run every model at (default: each model's own size).
        out: the ``profiles.json`` to add to or update.
        batch_sizes: batch sizes to time.
        runs: timed calls per batch size.
        max_images: evaluate only the first images (default: all).
        device: ``cpu`` or ``cuda``.
        class_agnostic: ignore classes when matching (else labels map to the models' category
            ids).

    Returns:
        The new profiles by detector name (``<model stem>_<W>x<H>``).
    """
    profiler = NNProfiler(batch_sizes, runs=runs, max_images=max_images)
    coco = read_coco_file(Path(annotations))[0]
    sizes: list[tuple[int, int] | None] = (
        [(int(w), int(h)) for w, h in input_sizes] if input_sizes else [None]
    )
    profiles: dict[str, Profile] = {}
    for model in models:
        for size in sizes:
            detector = DeployedDetector(Path(model), size, device)
            category_ids = None if class_agnostic else detector.model.inference.category_ids
            profile = profiler.profile(detector, coco, Path(images), category_ids)
            update_profile(Path(out), profile)
            profiles[profile.name] = profile
    print(format_profiles(profiles))
    print(f"{len(profiles)} detectors profiled; written to {out}")
    return profiles
