"""Checks an exported model against the PyTorch model it came from, on real validation images.

Both run on the same letterboxed validation images (a subset of the data module's validation
split, or ``val_images`` of them): the maximum absolute difference of their outputs, and the
COCO AP of each against the ground truth. The result goes into ``export_report.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from neo.deploy.preprocess import FramePreprocessor
from neo.deploy.runtime import DeployedModel
from neo.metrics.coco import CocoEvaluator
from neo.tasks.detection import Target, coco_results, to_original_pixels

SCORE_FLOOR = 0.05


@dataclass
class ValidationSet:
    """Validation images at a model's input size, with what maps detections back.

    Attributes:
        images: float32 (N, 3, H, W) in [0, 1].
        targets: per image ``image_id``, ``scale``, ``offset``, ``orig_size`` (as the data
            module's batches have them, adjusted to the input size).
        ground_truth: the COCO ground truth of the split.
        category_ids: dataset category id of each training label.
    """

    images: Tensor
    targets: list[Target]
    ground_truth: dict[str, Any]
    category_ids: list[int]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batches(self, batch_size: int) -> list[tuple[Tensor, list[Target]]]:
        """The set in batches of ``batch_size``."""
        return [
            (self.images[i : i + batch_size], self.targets[i : i + batch_size])
            for i in range(0, len(self), batch_size)
        ]


def validation_set(
    datamodule: Any,
    preprocessor: FramePreprocessor,
    category_ids: list[int],
    count: int | None = None,
    stage: str = "val",
) -> ValidationSet:
    """The first ``count`` images of the data module's evaluation split at the input size.

    The data module's batches are letterboxed to its evaluation size; when the export's input
    size differs they are brought to it by ``preprocessor`` (the same letterbox or stretch), and
    the maps back to original pixels are composed.

    Raises:
        ValueError: the data module has no ground truth or no images in the split.
    """
    if not hasattr(datamodule, "ground_truth"):
        raise ValueError(f"{type(datamodule).__name__} has no ground truth to validate against")
    datamodule.setup("validate" if stage == "val" else stage)
    loader = datamodule.val_dataloader() if stage == "val" else datamodule.test_dataloader()
    images: list[Tensor] = []
    targets: list[Target] = []
    height, width = preprocessor.input_size
    for batch_images, batch_targets in loader:
        for image, target in zip(batch_images, batch_targets):
            if count is not None and len(images) >= count:
                break
            if tuple(image.shape[-2:]) == (height, width):
                images.append(image.float() / 255.0)
                targets.append(target)
                continue
            prepared = preprocessor(np.ascontiguousarray(image.permute(1, 2, 0).numpy()))
            scale = torch.as_tensor(prepared.scale, dtype=torch.float32)
            offset = torch.as_tensor(prepared.offset, dtype=torch.float32)
            images.append(prepared.image)
            targets.append(
                {
                    **target,
                    "scale": target["scale"].float() * scale,
                    "offset": target["offset"].float() * scale + offset,
                }
            )
        if count is not None and len(images) >= count:
            break
    if not images:
        raise ValueError(f"{type(datamodule).__name__}: no {stage} images to validate on")
    return ValidationSet(
        torch.stack(images), targets, datamodule.ground_truth(stage), list(category_ids)
    )


def run_on_set(
    model: DeployedModel | Any, data: ValidationSet, batch_size: int
) -> tuple[tuple[Tensor, Tensor, Tensor], dict[str, float], float]:
    """Outputs on the whole set, its COCO statistics and the mean seconds per batch.

    Args:
        model: a :class:`DeployedModel` or any callable with the contract.
        data: the validation set.
        batch_size: images per call.
    """
    evaluator = CocoEvaluator(data.ground_truth)
    outputs: list[tuple[Tensor, Tensor, Tensor]] = []
    seconds = 0.0
    for images, targets in data.batches(batch_size):
        start = time.perf_counter()
        boxes, scores, labels = (t.detach().cpu() for t in model(images))
        seconds += time.perf_counter() - start
        outputs.append((boxes.float(), scores.float(), labels.long()))
        results = []
        for b, s, lab, target in zip(boxes, scores, labels, targets):
            keep = (lab >= 0) & (s > 0)
            ids = [data.category_ids[int(i)] for i in lab[keep].tolist()]
            original = to_original_pixels(b[keep].float(), target)
            results += coco_results(target["image_id"], original, s[keep].float(), ids)
        evaluator.update(results, [int(t["image_id"]) for t in targets])
    stats = evaluator.compute()
    joined = tuple(torch.cat(list(parts)) for parts in zip(*outputs))
    return joined, stats, seconds / max(1, len(outputs))  # type: ignore[return-value]


def output_difference(
    reference: tuple[Tensor, Tensor, Tensor], exported: tuple[Tensor, Tensor, Tensor]
) -> dict[str, float]:
    """Maximum absolute differences of boxes and scores, and the share of equal labels.

    Rows are compared in order (both models rank detections by score); ``*_confident`` restricts
    the comparison to rows where the reference scores at least ``SCORE_FLOOR``.
    """
    ref_boxes, ref_scores, ref_labels = reference
    boxes, scores, labels = exported
    rows = min(ref_scores.shape[1], scores.shape[1])
    ref_boxes, ref_scores, ref_labels = (
        ref_boxes[:, :rows],
        ref_scores[:, :rows],
        ref_labels[:, :rows],
    )
    boxes, scores, labels = boxes[:, :rows], scores[:, :rows], labels[:, :rows]
    confident = ref_scores >= SCORE_FLOOR
    box_diff = (ref_boxes - boxes).abs().amax(-1)
    score_diff = (ref_scores - scores).abs()

    def worst(values: Tensor) -> float:
        return float(values.max()) if values.numel() else 0.0

    return {
        "boxes_max_abs": worst(box_diff),
        "scores_max_abs": worst(score_diff),
        "boxes_max_abs_confident": worst(box_diff[confident]),
        "scores_max_abs_confident": worst(score_diff[confident]),
        "labels_equal": float((ref_labels == labels).float().mean()),
    }


def headline(stats: dict[str, float]) -> dict[str, float]:
    """AP, AP50 and AP75 rounded for reports."""
    return {k: round(float(stats[k]), 4) for k in ("AP", "AP50", "AP75") if k in stats}


def compare_models(
    reference_run: tuple[tuple[Tensor, Tensor, Tensor], dict[str, float], float],
    exported: DeployedModel,
    data: ValidationSet,
    batch_size: int,
) -> dict[str, Any]:
    """The validation entry of ``export_report.json`` for one exported model.

    Args:
        reference_run: :func:`run_on_set` of the PyTorch model on ``data``.
        exported: the exported model.
        data: the validation set.
        batch_size: images per call.
    """
    ref_out, ref_stats, _ = reference_run
    out, stats, seconds = run_on_set(exported, data, batch_size)
    ref_ap, ap = headline(ref_stats), headline(stats)
    return {
        "images": len(data),
        "batch": batch_size,
        "difference": output_difference(ref_out, out),
        "exported": {**ap, "seconds_per_batch": round(seconds, 5)},
        "ap_delta": round(ap.get("AP", 0.0) - ref_ap.get("AP", 0.0), 4),
    }
