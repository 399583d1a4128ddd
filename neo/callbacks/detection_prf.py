"""Precision, recall and F1 at fixed score and IoU thresholds, logged beside COCO AP."""

from __future__ import annotations

from typing import Any

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info

from neo.metrics.detection_prf import PRFAccumulator


class DetectionPRF(Callback):
    """Logs ``<stage>/precision``, ``<stage>/recall``, ``<stage>/F1`` and ``<stage>/F1_<class>``.

    Detections with ``score >= score_threshold`` are matched greedily to ground truth of the same
    class at ``IoU >= iou_threshold`` (:mod:`neo.metrics.detection_prf`), in the network's input
    pixels (IoU does not change under the per-axis scaling back to the original image). Counts are
    summed over the epoch and over DDP ranks, each ``image_id`` once (the samples
    ``DistributedSampler`` repeats are not counted twice). Works with any task whose
    validation/test step returns ``{"detections": [...]}`` (as :class:`neo.tasks.DetectionTask`
    does).

    Args:
        score_threshold: lowest score of a detection that counts.
        iou_threshold: lowest IoU of a match.
    """

    def __init__(self, score_threshold: float = 0.5, iou_threshold: float = 0.5) -> None:
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self._accumulator: PRFAccumulator | None = None

    def _start(self, pl_module: LightningModule) -> None:
        self._accumulator = PRFAccumulator(
            pl_module.num_classes, self.score_threshold, self.iou_threshold
        )

    def _update(self, outputs: Any, batch: Any) -> None:
        if (
            self._accumulator is None
            or not isinstance(outputs, dict)
            or "detections" not in outputs
        ):
            return
        _, targets = batch
        truth = [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]
        ids = [t.get("image_id") for t in targets]
        image_ids = None if any(i is None for i in ids) else [int(i) for i in ids]
        self._accumulator.update(outputs["detections"], truth, image_ids)

    def _finish(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._accumulator is None:
            return
        result = self._accumulator.compute()
        self._accumulator = None
        names = list(getattr(pl_module, "class_names", [])) or [
            str(i) for i in range(pl_module.num_classes)
        ]
        headline = {
            f"{stage}/precision": result["precision"],
            f"{stage}/recall": result["recall"],
            f"{stage}/F1": result["f1"],
        }
        # counts are already summed over ranks, so every rank logs the same value
        pl_module.log_dict(headline, prog_bar=True)
        pl_module.log_dict(
            {f"{stage}/F1_{names[c]}": v["f1"] for c, v in result["per_class"].items()}
        )
        if not trainer.sanity_checking:
            per_class = "  ".join(
                f"{names[c]} {v['f1']:.3f}" for c, v in result["per_class"].items()
            )
            rank_zero_info(
                f"epoch {pl_module.current_epoch} {stage}: precision {result['precision']:.4f}  "
                f"recall {result['recall']:.4f}  F1 {result['f1']:.4f}  "
                f"(tp {result['tp']} fp {result['fp']} fn {result['fn']}; "
                f"F1 per class: {per_class})"
            )

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        self._start(pl_module)

    def on_validation_batch_end(  # noqa: D102
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._update(outputs, batch)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        self._finish(trainer, pl_module, "val")

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        self._start(pl_module)

    def on_test_batch_end(  # noqa: D102
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._update(outputs, batch)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        self._finish(trainer, pl_module, "test")
