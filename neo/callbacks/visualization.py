"""Saves validation images with predicted and ground-truth boxes and logs them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

from neo.utils.drawing import draw_detections


class DetectionVisualizer(Callback):
    """After each validation, renders a few images with predictions and ground truth.

    Images go to ``<log_dir>/visualizations/epoch_<N>/`` and to TensorBoard or W&B when those
    loggers are active.

    Args:
        num_images: images rendered per validation.
        score_threshold: predictions below this score are not drawn.
    """

    def __init__(self, num_images: int = 4, score_threshold: float = 0.3) -> None:
        self.num_images = num_images
        self.score_threshold = score_threshold
        self._rendered: list[tuple[int, np.ndarray]] = []

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        self._rendered = []

    def on_validation_batch_end(  # noqa: D102
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if (
            trainer.sanity_checking
            or len(self._rendered) >= self.num_images
            or not trainer.is_global_zero
        ):
            return
        images, targets = batch
        names = list(getattr(pl_module, "class_names", []))
        for image, target, det in zip(images, targets, outputs["detections"]):
            if len(self._rendered) >= self.num_images:
                break
            keep = det["scores"] >= self.score_threshold
            picture = draw_detections(
                image.permute(1, 2, 0).cpu().numpy(),
                det["boxes"][keep].float().cpu().numpy(),
                det["labels"][keep].cpu().tolist(),
                names,
                det["scores"][keep].float().cpu().tolist(),
                ground_truth=target["boxes"].cpu().numpy(),
            )
            self._rendered.append((int(target["image_id"]), picture))

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask
        if not self._rendered or not trainer.is_global_zero:
            return
        folder = Path(log_dir or trainer.default_root_dir) / "visualizations"
        folder = folder / f"epoch_{trainer.current_epoch:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for image_id, picture in self._rendered:
            cv2.imwrite(
                str(folder / f"image_{image_id}.jpg"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
            )
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                for image_id, picture in self._rendered:
                    logger.experiment.add_image(
                        f"val/image_{image_id}", picture, trainer.global_step, dataformats="HWC"
                    )
            elif isinstance(logger, WandbLogger):
                logger.log_image(
                    "val/predictions",
                    [p for _, p in self._rendered],
                    step=trainer.global_step,
                    caption=[f"image {i}" for i, _ in self._rendered],
                )
        self._rendered = []
