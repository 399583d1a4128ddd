"""Precision, recall and F1 of detections at fixed score and IoU thresholds.

Matching, per image and class: predictions with ``score >= score_threshold`` are taken in
descending score order (ties keep input order); each is matched to the still-unmatched ground truth
box of the same class with the highest IoU, if that IoU is ``>= iou_threshold`` (a true positive),
otherwise it is a false positive. Unmatched ground truth boxes are false negatives.

``precision = tp / (tp + fp)``, ``recall = tp / (tp + fn)``, ``f1 = 2pr / (p + r)``; each is defined
as 0 when its denominator is 0 (no predictions, no ground truth, or p = r = 0). The overall values
are micro-averaged: counts are summed over classes first.

Inputs are lists (one entry per image) of dicts of tensors: predictions ``boxes`` (N, 4) xyxy,
``scores`` (N,), ``labels`` (N,); ground truth ``boxes`` and ``labels``. Labels are
``0 .. num_classes − 1``.
"""

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torchvision.ops import box_iou


def _check_labels(labels: torch.Tensor, num_classes: int) -> None:
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got {labels.tolist()}")


def match_counts(
    detection: dict[str, torch.Tensor],
    ground_truth: dict[str, torch.Tensor],
    num_classes: int,
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
) -> torch.Tensor:
    """True positives, false positives and false negatives of one image per class.

    Args:
        detection: ``boxes``, ``scores``, ``labels`` of the predictions.
        ground_truth: ``boxes`` and ``labels`` of the annotated objects.
        num_classes: Number of classes.
        score_threshold: Predictions below this score are ignored.
        iou_threshold: Smallest IoU that counts as a match.

    Returns:
        int64 tensor of shape ``(3, num_classes)``: rows tp, fp, fn.
    """
    boxes = detection["boxes"].detach().float().cpu().reshape(-1, 4)
    scores = detection["scores"].detach().float().cpu().reshape(-1)
    labels = detection["labels"].detach().cpu().reshape(-1).long()
    gt_boxes = ground_truth["boxes"].detach().float().cpu().reshape(-1, 4)
    gt_labels = ground_truth["labels"].detach().cpu().reshape(-1).long()
    _check_labels(labels, num_classes)
    _check_labels(gt_labels, num_classes)
    keep = scores >= score_threshold
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    counts = torch.zeros(3, num_classes, dtype=torch.int64)
    for cls in torch.unique(torch.cat([labels, gt_labels])).tolist():
        pred = boxes[labels == cls][
            torch.argsort(scores[labels == cls], descending=True, stable=True)
        ]
        gt = gt_boxes[gt_labels == cls]
        matched = torch.zeros(len(gt), dtype=torch.bool)
        ious = box_iou(pred, gt) if len(pred) and len(gt) else torch.zeros(len(pred), len(gt))
        tp = 0
        for row in ious:
            row = row.masked_fill(matched, -1.0)
            if len(row) and row.max() >= iou_threshold:
                matched[int(row.argmax())] = True
                tp += 1
        counts[0, cls] += tp
        counts[1, cls] += len(pred) - tp
        counts[2, cls] += len(gt) - tp
    return counts


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def summarise(counts: torch.Tensor) -> dict:
    """Overall (micro) and per-class precision, recall, F1 and counts from ``(3, C)`` counts."""

    def scores(tp: int, fp: int, fn: int) -> dict:
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1 = _ratio(2 * precision * recall, precision + recall)
        return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}

    total = counts.sum(dim=1).tolist()
    result = scores(*total)
    result["per_class"] = {c: scores(*counts[:, c].tolist()) for c in range(counts.shape[1])}
    return result


def precision_recall_f1(
    detections: Sequence[dict[str, torch.Tensor]],
    ground_truth: Sequence[dict[str, torch.Tensor]],
    num_classes: int,
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
) -> dict:
    """Precision, recall and F1 over a set of images (see module docstring for the rules).

    Args:
        detections: Per-image predictions.
        ground_truth: Per-image ground truth, same order and length.
        num_classes: Number of classes.
        score_threshold: Predictions below this score are ignored.
        iou_threshold: Smallest IoU that counts as a match.

    Returns:
        ``{"precision", "recall", "f1", "tp", "fp", "fn", "per_class": {class: {...same keys}}}``.
    """
    accumulator = PRFAccumulator(num_classes, score_threshold, iou_threshold)
    accumulator.update(detections, ground_truth)
    return summarise(accumulator.counts)


class PRFAccumulator:
    """Sums tp/fp/fn batch by batch; :meth:`compute` adds them up across DDP ranks.

    Images given with an id are counted once: an id seen again (``DistributedSampler`` repeats
    samples to even out the ranks) is ignored, on this rank and, when the ranks are combined, on
    every later rank, as :class:`neo.metrics.coco.CocoEvaluator` does.

    Args:
        num_classes: Number of classes.
        score_threshold: Predictions below this score are ignored.
        iou_threshold: Smallest IoU that counts as a match.
    """

    def __init__(self, num_classes: int, score_threshold: float = 0.5, iou_threshold: float = 0.5):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self._anonymous = torch.zeros(3, num_classes, dtype=torch.int64)
        self._per_image: dict[int, torch.Tensor] = {}

    @property
    def counts(self) -> torch.Tensor:
        """``(3, num_classes)`` tp/fp/fn of the images seen on this rank."""
        total = self._anonymous.clone()
        for counts in self._per_image.values():
            total += counts
        return total

    def reset(self) -> None:
        """Forget everything seen so far."""
        self._anonymous.zero_()
        self._per_image = {}

    def update(
        self,
        detections: Sequence[dict[str, torch.Tensor]],
        ground_truth: Sequence[dict[str, torch.Tensor]],
        image_ids: Sequence[int] | None = None,
    ) -> None:
        """Add one batch of images.

        Args:
            detections: Per-image predictions.
            ground_truth: Per-image ground truth, same order and length.
            image_ids: Id of each image; an image already seen is ignored. ``None``: every image
                is counted.
        """
        if len(detections) != len(ground_truth):
            raise ValueError(
                f"{len(detections)} detection entries but {len(ground_truth)} ground truth entries"
            )
        if image_ids is not None and len(image_ids) != len(detections):
            raise ValueError(f"{len(image_ids)} image ids for {len(detections)} images")
        ids = [None] * len(detections) if image_ids is None else [int(i) for i in image_ids]
        for det, gt, image_id in zip(detections, ground_truth, ids):
            if image_id is not None and image_id in self._per_image:
                continue
            counts = match_counts(
                det, gt, self.num_classes, self.score_threshold, self.iou_threshold
            )
            if image_id is None:
                self._anonymous += counts
            else:
                self._per_image[image_id] = counts

    def synced_counts(self) -> torch.Tensor:
        """Counts over all ranks (each image id once) when ``torch.distributed`` is initialised."""
        if not (dist.is_available() and dist.is_initialized()):
            return self.counts
        local = (self._anonymous.tolist(), {i: c.tolist() for i, c in self._per_image.items()})
        gathered: list = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, local)
        total = torch.zeros(3, self.num_classes, dtype=torch.int64)
        seen: set[int] = set()
        for anonymous, per_image in gathered:
            total += torch.tensor(anonymous, dtype=torch.int64)
            for image_id, counts in per_image.items():
                if image_id not in seen:
                    seen.add(image_id)
                    total += torch.tensor(counts, dtype=torch.int64)
        return total

    def compute(self) -> dict:
        """Summary over everything seen (on all ranks); see :func:`precision_recall_f1`."""
        return summarise(self.synced_counts())
