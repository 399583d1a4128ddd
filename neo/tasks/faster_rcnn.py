"""Faster R-CNN on the shared detection task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from neo.models.anchors import choose_anchors
from neo.models.faster_rcnn import BackboneName, build_faster_rcnn, set_anchors
from neo.tasks.detection import DetectionTask, Target, pad_detections


class FasterRCNNTask(DetectionTask):
    """torchvision Faster R-CNN (ResNet18/50-FPN) trained and evaluated by neo.

    Args:
        num_classes: number of object classes (no background); linked from the data.
        backbone: ``resnet18`` or ``resnet50``.
        pretrained_backbone: download torchvision's ImageNet backbone weights (needs internet).
        backbone_weights: local ResNet state dict to start the backbone from.
        trainable_backbone_layers: ResNet stages trained when starting from weights (5 = all).
        frozen_backbone_norm: freeze the backbone's BatchNorm layers (and train only
            ``trainable_backbone_layers`` stages); None: exactly when starting from ImageNet
            weights, as in torchvision's recipe.
        score_threshold: minimum score of a returned detection.
        nms_threshold: IoU of the per-class non-maximum suppression.
        detections_per_image: detections kept per image.
        returned_layers: ResNet stages (1-4) feeding the FPN (default all; ``[2, 3, 4]`` skips the
            costly stride-4 level).
        fpn_channels: channels of the FPN levels (torchvision: 256).
        box_head_dim: width of the two-layer box head (torchvision: 1024).
        anchor_sizes: anchor sizes per FPN level (one tuple per level; default 32..512).
        aspect_ratios: anchor aspect ratios ``h / w`` shared by the levels (default 0.5, 1, 2).
        fit_anchors: when fitting starts, fit one anchor size per level and the aspect ratios to
            the training boxes (k-means on log scale and log aspect ratio) and report the anchor
            recall before and after; the fitted anchors are stored in the checkpoint.
        rpn_proposals_train: proposals kept after the RPN's NMS in training.
        rpn_proposals_test: proposals kept after the RPN's NMS in evaluation.
        box_batch_size_per_image: RoIs sampled per image for the box-head loss.
        **kwargs: the optimiser and schedule arguments of
            :class:`~neo.tasks.detection.DetectionTask` (``lr``, ``warmup_epochs``, ...).
    """

    backbone_prefix = "model.backbone.body."
    export_tracer = "torchscript"

    def __init__(
        self,
        num_classes: int,
        backbone: BackboneName = "resnet18",
        pretrained_backbone: bool = False,
        backbone_weights: Path | None = None,
        trainable_backbone_layers: int = 3,
        frozen_backbone_norm: bool | None = None,
        score_threshold: float = 0.01,
        nms_threshold: float = 0.5,
        detections_per_image: int = 100,
        returned_layers: list[int] | None = None,
        fpn_channels: int = 256,
        box_head_dim: int = 1024,
        anchor_sizes: list[tuple[float, ...]] | None = None,
        aspect_ratios: list[float] | None = None,
        fit_anchors: bool = False,
        rpn_proposals_train: int = 2000,
        rpn_proposals_test: int = 1000,
        box_batch_size_per_image: int = 512,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_classes=num_classes, **kwargs)
        self.model = build_faster_rcnn(
            num_classes,
            backbone=backbone,
            pretrained_backbone=pretrained_backbone,
            backbone_weights=backbone_weights,
            trainable_backbone_layers=trainable_backbone_layers,
            frozen_norm=frozen_backbone_norm,
            returned_layers=returned_layers,
            fpn_channels=fpn_channels,
            box_head_dim=box_head_dim,
            anchor_sizes=anchor_sizes,
            aspect_ratios=aspect_ratios,
            rpn_post_nms_top_n_train=rpn_proposals_train,
            rpn_post_nms_top_n_test=rpn_proposals_test,
            box_batch_size_per_image=box_batch_size_per_image,
            box_score_thresh=score_threshold,
            box_nms_thresh=nms_threshold,
            box_detections_per_img=detections_per_image,
        )

    def setup(self, stage: str) -> None:
        """Takes the data spec; when fitting with ``fit_anchors``, fits the anchors to the data."""
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if stage == "fit" and self.hparams.get("fit_anchors") and datamodule is not None:
            self.fit_anchors_to(datamodule.training_box_sizes())

    def fit_anchors_to(self, box_wh: np.ndarray) -> None:
        """Fits the anchors to the training boxes (:func:`neo.models.anchors.choose_anchors`).

        Fitted anchors replace the configured ones in the hyper-parameters (with ``fit_anchors``
        off), so a checkpoint rebuilds this model without the data. Prints one report line.
        """
        generator = self.model.rpn.anchor_generator
        before_sizes = [float(s[0]) for s in generator.sizes]
        before_ratios = [float(r) for r in generator.aspect_ratios[0]]
        sizes, ratios, before, after = choose_anchors(box_wh, before_sizes, before_ratios)
        changed = after > before
        if changed:
            set_anchors(self.model, [(s,) for s in sizes], ratios)
            self.hparams.update(
                anchor_sizes=[(s,) for s in sizes], aspect_ratios=ratios, fit_anchors=False
            )
        if self._trainer is None or self.trainer.is_global_zero:
            print(
                f"neo: anchor recall (IoU >= 0.5) of {len(box_wh)} training boxes: {before:.3f} "
                f"with sizes {before_sizes} and ratios {before_ratios}; "
                + (
                    f"{after:.3f} fitted to the data: sizes {sizes}, ratios {ratios}"
                    if changed
                    else "no fitted anchors cover more, keeping these"
                ),
                flush=True,
            )

    @classmethod
    def without_initial_weights(cls, hparams: dict[str, Any]) -> dict[str, Any]:
        """No ImageNet download or weights file; the backbone keeps the frozen BatchNorm it had."""
        started_from_weights = bool(hparams.get("pretrained_backbone")) or (
            hparams.get("backbone_weights") is not None
        )
        frozen = hparams.get("frozen_backbone_norm")
        return {
            **hparams,
            "pretrained_backbone": False,
            "backbone_weights": None,
            "frozen_backbone_norm": started_from_weights if frozen is None else frozen,
        }

    def compute_losses(self, images: Tensor, targets: list[Target]) -> dict[str, Tensor]:
        """RPN and box-head losses from torchvision's model (labels shifted past background)."""
        shifted = [{"boxes": t["boxes"], "labels": t["labels"] + 1} for t in targets]
        return self.model(list(images), shifted)

    @property
    def max_detections(self) -> int:
        """``detections_per_image``."""
        return self.model.roi_heads.detections_per_img

    def run_model(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Detections in input pixels with labels 0..num_classes-1 (the model pads to 32)."""
        outputs = self.model(list(images))
        shifted = [{**out, "labels": out["labels"] - 1} for out in outputs]
        return pad_detections(shifted, self.max_detections)
