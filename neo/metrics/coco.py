"""COCO box evaluation (the 12 standard statistics) and its accumulating, DDP-aware form.

The numbers are pycocotools' ``COCOeval`` numbers, computed by faster-coco-eval's C++ core in its
default mode (no LVIS rules, no extra statistics), which reproduces pycocotools exactly, including
``-1`` for a statistic that has no ground truth to measure (e.g. ``APs`` without small objects).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch.distributed as dist
from faster_coco_eval import COCO, COCOeval_faster

COCO_STAT_NAMES: tuple[str, ...] = (
    "AP",
    "AP50",
    "AP75",
    "APs",
    "APm",
    "APl",
    "AR1",
    "AR10",
    "AR100",
    "ARs",
    "ARm",
    "ARl",
)


def _quiet(*_args: Any, **_kwargs: Any) -> None:
    """Swallow faster-coco-eval's progress messages."""


def _read_ground_truth(ground_truth: str | Path | dict) -> tuple[dict, str]:
    """Return the ground-truth dict and a name for error messages."""
    if isinstance(ground_truth, dict):
        return ground_truth, "ground truth"
    path = Path(ground_truth)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: COCO ground-truth file not found")
    try:
        with path.open() as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a COCO instances file must hold a JSON object")
    return data, str(path)


def _index_ground_truth(ground_truth: str | Path | dict) -> COCO:
    """Build a faster-coco-eval index over a private copy of the ground truth.

    The evaluator writes flags into annotation dicts (``ignore``), so every image and annotation
    dict is copied; nested lists are shared because nothing writes into them.
    """
    data, name = _read_ground_truth(ground_truth)
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{name}: missing or invalid '{key}' list")
    image_ids = {img["id"] for img in data["images"]}
    for ann in data["annotations"]:
        if ann["image_id"] not in image_ids:
            raise ValueError(
                f"{name}: annotation {ann.get('id')} refers to unknown image id {ann['image_id']}"
            )
        if "bbox" not in ann or "area" not in ann:
            raise ValueError(f"{name}: annotation {ann.get('id')} needs 'bbox' and 'area'")
    dataset = {
        "images": [dict(img) for img in data["images"]],
        "annotations": [dict(ann) for ann in data["annotations"]],
        "categories": [dict(cat) for cat in data["categories"]],
    }
    if "info" in data:
        dataset["info"] = data["info"]
    return COCO(dataset, print_function=_quiet)


def _copy_detections(detections: Iterable[dict], coco_gt: COCO) -> list[dict]:
    """Validate detections against the ground truth and copy them into plain Python types."""
    out = []
    for i, det in enumerate(detections):
        try:
            image_id = int(det["image_id"])
            category_id = int(det["category_id"])
            bbox = [float(v) for v in det["bbox"]]
            score = float(det["score"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                f"detection {i}: needs image_id, category_id, bbox [x, y, w, h] and score ({err})"
            ) from err
        if len(bbox) != 4:
            raise ValueError(f"detection {i}: bbox must be [x, y, w, h], got {len(bbox)} values")
        if image_id not in coco_gt.imgs:
            raise ValueError(f"detection {i}: image id {image_id} is not in the ground truth")
        if category_id not in coco_gt.cats:
            raise ValueError(
                f"detection {i}: category id {category_id} is not in the ground truth "
                f"(known: {sorted(coco_gt.cats)})"
            )
        out.append({"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": score})
    return out


@dataclass
class EvaluationDetails:
    """What one evaluation saw, for plots: per-class precision–recall at IoU 0.5 and the inputs.

    Attributes:
        category_ids: the ground truth's category ids, in the order of ``precision``'s rows.
        recall: the 101 recall points of COCO's interpolated precision.
        precision: (K, 101) interpolated precision at IoU 0.5, all areas, 100 detections; ``-1``
            for a category without ground truth.
        ground_truth: the evaluated ground truth (COCO dict, not to be modified).
        detections: the evaluated detections (COCO results).
        image_ids: the evaluated images.
        class_ap: (K,) COCO AP (IoU 0.50:0.95, all areas, 100 detections) of each category;
            ``-1`` for a category without ground truth.
    """

    category_ids: list[int]
    recall: np.ndarray
    precision: np.ndarray
    ground_truth: dict
    detections: list[dict]
    image_ids: list[int]
    class_ap: np.ndarray


def _evaluate_indexed(
    coco_gt: COCO, detections: list[dict], image_ids: Sequence[int] | None
) -> tuple[dict[str, float], Any]:
    """Run the evaluation on an indexed ground truth and validated detection copies.

    Returns:
        The 12 statistics and the accumulated ``COCOeval_faster`` (``None`` without images).
    """
    if image_ids is not None:
        image_ids = sorted({int(i) for i in image_ids})
        unknown = [i for i in image_ids if i not in coco_gt.imgs]
        if unknown:
            raise ValueError(f"image ids {unknown[:5]} are not in the ground truth")
        if not image_ids:
            # No image to evaluate: every statistic is undefined, as pycocotools reports it.
            return dict.fromkeys(COCO_STAT_NAMES, -1.0), None
    coco_dt = coco_gt.loadRes(detections)
    coco_dt.print_function = _quiet
    evaluator = COCOeval_faster(coco_gt, coco_dt, iouType="bbox", print_function=_quiet)
    if image_ids is not None:
        evaluator.params.imgIds = image_ids
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    stats = evaluator.stats
    return {name: float(stats[i]) for i, name in enumerate(COCO_STAT_NAMES)}, evaluator


def _details(
    evaluator: Any, coco_gt: COCO, detections: list[dict], image_ids: Sequence[int]
) -> EvaluationDetails:
    params = evaluator.params
    iou = int(np.argmin(np.abs(np.asarray(params.iouThrs) - 0.5)))
    # precision: [IoU, recall, category, area range (0: all), max detections (-1: 100)]
    every_iou = np.asarray(evaluator.eval["precision"])[:, :, :, 0, -1]
    precision = every_iou[iou].T
    valid = every_iou > -1
    counted = valid.sum((0, 1))
    class_ap = np.where(
        counted > 0, np.where(valid, every_iou, 0).sum((0, 1)) / np.maximum(counted, 1), -1.0
    )
    return EvaluationDetails(
        category_ids=[int(c) for c in params.catIds],
        recall=np.asarray(params.recThrs, np.float64),
        precision=precision.astype(np.float64),
        ground_truth=coco_gt.dataset,
        detections=detections,
        image_ids=sorted(int(i) for i in image_ids),
        class_ap=class_ap.astype(np.float64),
    )


def evaluate_coco(
    ground_truth: str | Path | dict,
    detections: list[dict],
    image_ids: Sequence[int] | None = None,
) -> dict[str, float]:
    """Compute the 12 standard COCO box statistics.

    Args:
        ground_truth: COCO instances JSON path or the already-loaded dict (not modified).
        detections: COCO result dicts with ``image_id``, ``category_id``, ``bbox`` as
            ``[x, y, w, h]`` in pixels, and ``score`` (not modified).
        image_ids: Evaluate only these images (``None``: every image of the ground truth).

    Returns:
        ``AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl`` as floats, equal to
        pycocotools' ``COCOeval.stats``; ``-1`` where a statistic has no ground truth.

    Raises:
        FileNotFoundError: The ground-truth path does not exist.
        ValueError: Malformed input, or a detection with an image or category id the ground truth
            does not have.
    """
    coco_gt = _index_ground_truth(ground_truth)
    return _evaluate_indexed(coco_gt, _copy_detections(detections, coco_gt), image_ids)[0]


def merge_rank_results(
    per_rank: Sequence[tuple[Sequence[dict], Sequence[int]]],
) -> tuple[list[dict], list[int]]:
    """Merge the detections and seen image ids of several ranks, one rank per image.

    A distributed sampler pads the last batch by repeating samples, so one image can be evaluated
    on several ranks. The lowest rank that saw an image keeps its detections for that image; the
    other ranks' detections for it are dropped, so nothing is counted twice.

    Args:
        per_rank: For each rank in rank order, its ``(detections, seen_image_ids)``.

    Returns:
        The merged detections and the sorted unique seen image ids.
    """
    owner: dict[int, int] = {}
    for rank, (_, seen) in enumerate(per_rank):
        for image_id in seen:
            owner.setdefault(int(image_id), rank)
    merged = [
        det
        for rank, (dets, _) in enumerate(per_rank)
        for det in dets
        if owner.get(int(det["image_id"])) == rank
    ]
    return merged, sorted(owner)


class CocoEvaluator:
    """Accumulates detections batch by batch and computes COCO statistics over the images seen.

    Under ``torch.distributed`` every rank gathers all ranks' results in :meth:`compute`, images
    evaluated on several ranks count once, and every rank returns the same statistics. Only the
    images seen since :meth:`reset` are evaluated, so a partial validation pass (a few batches)
    still measures something meaningful.

    Args:
        ground_truth: COCO instances dict (or JSON path) of the evaluated split; it is copied.
    """

    def __init__(self, ground_truth: str | Path | dict) -> None:
        self._coco_gt = _index_ground_truth(ground_truth)
        self._detections: list[dict] = []
        self._seen: dict[int, None] = {}
        self.details: EvaluationDetails | None = None

    def reset(self) -> None:
        """Forget everything accumulated."""
        self._detections = []
        self._seen = {}

    def update(self, detections: list[dict], image_ids: list[int]) -> None:
        """Add one batch.

        Args:
            detections: COCO result dicts for the batch's images (category ids as in the ground
                truth, boxes ``[x, y, w, h]`` in original-image pixels).
            image_ids: Every image of the batch, including those without detections. An image
                already seen since the last reset is ignored, with its detections.

        Raises:
            ValueError: A detection for an image that is not in ``image_ids``, or unknown ids.
        """
        batch = {int(i) for i in image_ids}
        unknown = [i for i in batch if i not in self._coco_gt.imgs]
        if unknown:
            raise ValueError(f"image ids {sorted(unknown)[:5]} are not in the ground truth")
        fresh = {i for i in batch if i not in self._seen}
        for det in _copy_detections(detections, self._coco_gt):
            if det["image_id"] not in batch:
                raise ValueError(
                    f"detection for image {det['image_id']} which is not among the batch's "
                    f"image_ids {sorted(batch)}"
                )
            if det["image_id"] in fresh:
                self._detections.append(det)
        for i in image_ids:
            self._seen.setdefault(int(i), None)

    def compute(self) -> dict[str, float]:
        """Evaluate everything accumulated (all ranks together when distributed).

        Returns:
            The 12 statistics of :func:`evaluate_coco`, identical on every rank. ``details``
            then holds the per-class precision–recall and the evaluated inputs (``None`` when no
            image was seen).
        """
        detections, seen = self._detections, list(self._seen)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, (detections, seen))
            detections, seen = merge_rank_results(gathered)
        stats, evaluator = _evaluate_indexed(self._coco_gt, detections, seen)
        self.details = None
        if evaluator is not None:
            self.details = _details(evaluator, self._coco_gt, detections, seen)
        return stats
