"""RT-DETRv2 on the shared detection task."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from neo.models.rtdetr import (
    SIZE_DIVISOR,
    RTDETRCriterion,
    RTDETRPostProcessor,
    build_rtdetr,
    load_official_state_dict,
)
from neo.tasks.detection import DetectionTask, Target

Variant = Literal["r18", "r34", "r50"]


def pad_to_multiple(images: Tensor, divisor: int = SIZE_DIVISOR) -> Tensor:
    """Zero-pads (B, 3, H, W) at the bottom and right to multiples of ``divisor``."""
    h, w = images.shape[-2:]
    pad_h, pad_w = -h % divisor, -w % divisor
    if pad_h or pad_w:
        images = F.pad(images, (0, pad_w, 0, pad_h))
    return images


def xyxy_pixels_to_cxcywh_normalized(boxes: Tensor, height: int, width: int) -> Tensor:
    """Pixel ``x0, y0, x1, y1`` boxes to ``cx, cy, w, h`` relative to ``height`` x ``width``."""
    boxes = boxes.float()
    x0, y0, x1, y1 = boxes.unbind(-1)
    cxcywh = torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim=-1)
    scale = cxcywh.new_tensor([width, height, width, height])
    return cxcywh / scale


def _all_finite(outputs: dict) -> bool:
    """Whether every predicted logit and box of every decoder/encoder/denoising output is finite."""
    heads = [
        outputs,
        *outputs.get("aux_outputs", []),
        *outputs.get("enc_aux_outputs", []),
        *outputs.get("dn_aux_outputs", []),
    ]
    flags = [torch.isfinite(h[k]).all() for h in heads for k in ("pred_logits", "pred_boxes")]
    return bool(torch.stack(flags).all())


class RTDETRTask(DetectionTask):
    """RT-DETRv2 (ResNet-vd backbones) trained and evaluated by neo at any 32-multiple size.

    Model overrides left at ``None`` keep the variant's official value.

    Args:
        num_classes: number of object classes; linked from the data.
        variant: backbone depth and matching encoder/decoder sizes (``r18``, ``r34``, ``r50``).
        pretrained_checkpoint: official RT-DETRv2 checkpoint (``.pth`` read weights-only) to start
            from; class-dependent layers are re-initialised when the class count differs.
        num_queries: decoder queries selected from the encoder.
        num_top_queries: detections kept per image after post-processing.
        hidden_dim: encoder and decoder width.
        num_decoder_layers: decoder layers.
        decoder_ffn_dim: decoder feed-forward width.
        encoder_ffn_dim: feed-forward width of the encoder's transformer layer.
        nhead: attention heads in encoder and decoder.
        num_denoising: denoising query budget in training (0 disables denoising).
        expansion: CSP hidden width fraction of the encoder.
        depth_mult: RepVGG block count multiplier of the encoder.
        channels_last: convolutions in channels-last memory layout (faster; outputs equal to
            the default layout's up to float rounding).
        **kwargs: the optimiser and schedule arguments of
            :class:`~neo.tasks.detection.DetectionTask` (``lr``, ``warmup_epochs``, ...).
    """

    backbone_prefix = "model.backbone."

    def __init__(
        self,
        num_classes: int,
        variant: Variant = "r50",
        pretrained_checkpoint: Path | None = None,
        num_queries: int = 300,
        num_top_queries: int = 300,
        hidden_dim: int | None = None,
        num_decoder_layers: int | None = None,
        decoder_ffn_dim: int | None = None,
        encoder_ffn_dim: int | None = None,
        nhead: int | None = None,
        num_denoising: int | None = None,
        expansion: float | None = None,
        depth_mult: float | None = None,
        channels_last: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_classes=num_classes, **kwargs)
        optional = {
            "hidden_dim": hidden_dim,
            "num_decoder_layers": num_decoder_layers,
            "decoder_ffn_dim": decoder_ffn_dim,
            "encoder_ffn_dim": encoder_ffn_dim,
            "nhead": nhead,
            "num_denoising": num_denoising,
            "expansion": expansion,
            "depth_mult": depth_mult,
        }
        overrides = {k: v for k, v in optional.items() if v is not None}
        self.model = build_rtdetr(
            variant,
            num_classes,
            num_queries=num_queries,
            channels_last=channels_last,
            **overrides,
        )
        self.criterion = RTDETRCriterion(num_classes)
        self.postprocessor = RTDETRPostProcessor(num_top_queries)
        self._max_detections = min(num_top_queries, num_queries * num_classes)
        if pretrained_checkpoint is not None:
            report = load_official_state_dict(self.model, pretrained_checkpoint)
            rank_zero_info(f"RT-DETR weights from {pretrained_checkpoint}: {report.summary()}")

    @classmethod
    def without_initial_weights(cls, hparams: dict[str, Any]) -> dict[str, Any]:
        """The checkpoint's hyper-parameters without ``pretrained_checkpoint``."""
        return {**hparams, "pretrained_checkpoint": None}

    def compute_losses(self, images: Tensor, targets: list[Target]) -> dict[str, Tensor]:
        """Weighted RT-DETR loss terms; the criterion always runs in float32, outside autocast."""
        images = pad_to_multiple(images)
        height, width = images.shape[-2:]
        model_targets = [
            {
                "boxes": xyxy_pixels_to_cxcywh_normalized(t["boxes"], height, width),
                "labels": t["labels"].long(),
            }
            for t in targets
        ]
        outputs = self.model(images, model_targets)
        if not _all_finite(outputs):
            # The Hungarian matcher cannot run on NaN costs; a NaN loss lets the base skip the step.
            return {"loss_nonfinite": images.new_tensor(float("nan"))}
        with torch.autocast(device_type=images.device.type, enabled=False):
            return self.criterion(outputs, model_targets)

    @property
    def max_detections(self) -> int:
        """``num_top_queries`` (at most one per query and class)."""
        return self._max_detections

    def run_model(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Top-scoring detections in input pixels with labels 0..num_classes-1."""
        images = pad_to_multiple(images, self.size_divisor)
        outputs = self.model(images)
        height, width = images.shape[-2:]
        ones = images.new_ones(images.shape[0], 1)
        return self.postprocessor(outputs, torch.cat([ones * height, ones * width], dim=1))

    def on_fit_start(self) -> None:
        """States the optimisation setup once (useful when comparing runs)."""
        params = sum(p.numel() for p in self.model.parameters())
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        rank_zero_info(
            f"RT-DETR {self.hparams.variant}: {params / 1e6:.2f} M parameters "
            f"({trainable / 1e6:.2f} M trainable)"
        )
