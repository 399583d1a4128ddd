"""Faster R-CNN on the shared detection task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from neo.models.faster_rcnn import BackboneName, build_faster_rcnn
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
        anchor_sizes: list[tuple[int, ...]] | None = None,
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
            rpn_post_nms_top_n_train=rpn_proposals_train,
            rpn_post_nms_top_n_test=rpn_proposals_test,
            box_batch_size_per_image=box_batch_size_per_image,
            box_score_thresh=score_threshold,
            box_nms_thresh=nms_threshold,
            box_detections_per_img=detections_per_image,
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
