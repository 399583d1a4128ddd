"""RT-DETRv2 variants matching the official ``rtdetrv2_r{18,34}vd_120e`` / ``r50vd_6x`` configs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from neo.models.rtdetr.backbone import PResNet
from neo.models.rtdetr.decoder import RTDETRDecoder
from neo.models.rtdetr.hybrid_encoder import HybridEncoder
from neo.models.rtdetr.model import RTDETR


@dataclass(frozen=True)
class RTDETRConfig:
    """Hyper-parameters of an RT-DETRv2 model (defaults: the R50 official config).

    Attributes:
        depth: ResNet-vd depth.
        freeze_at: Freeze stem and the first ``freeze_at`` stages (-1: nothing).
        freeze_norm: Use frozen batch norms in the backbone.
        hidden_dim: Encoder/decoder width.
        expansion: CSP hidden width fraction in the encoder.
        depth_mult: RepVGG block count multiplier in the encoder.
        encoder_ffn_dim: AIFI FFN width.
        num_encoder_layers: AIFI layers.
        nhead: Attention heads (encoder and decoder).
        num_decoder_layers: Decoder layers.
        decoder_ffn_dim: Decoder FFN width.
        num_queries: Selected queries.
        num_points: Deformable sampling points per level.
        num_denoising: Denoising query budget.
        label_noise_ratio: Denoising label noise.
        box_noise_scale: Denoising box noise.
        eval_idx: Decoder layer used at inference.
        channels_last: Run the convolutions in channels-last memory layout: faster on CPUs and
            tensor-core GPUs, outputs equal to the default layout's up to float rounding.
    """

    depth: int = 50
    freeze_at: int = 0
    freeze_norm: bool = True
    hidden_dim: int = 256
    expansion: float = 1.0
    depth_mult: float = 1.0
    encoder_ffn_dim: int = 1024
    num_encoder_layers: int = 1
    nhead: int = 8
    num_decoder_layers: int = 6
    decoder_ffn_dim: int = 1024
    num_queries: int = 300
    num_points: tuple[int, ...] = (4, 4, 4)
    num_denoising: int = 100
    label_noise_ratio: float = 0.5
    box_noise_scale: float = 1.0
    eval_idx: int = -1
    channels_last: bool = True


VARIANTS: dict[str, RTDETRConfig] = {
    "r18": RTDETRConfig(
        depth=18, freeze_at=-1, freeze_norm=False, expansion=0.5, num_decoder_layers=3
    ),
    "r34": RTDETRConfig(
        depth=34, freeze_at=-1, freeze_norm=False, expansion=0.5, num_decoder_layers=4
    ),
    "r50": RTDETRConfig(
        depth=50, freeze_at=0, freeze_norm=True, expansion=1.0, num_decoder_layers=6
    ),
}


def rtdetr_config(variant: str, **overrides: object) -> RTDETRConfig:
    """Return the configuration of ``variant`` with ``overrides`` applied.

    Args:
        variant: ``"r18"``, ``"r34"`` or ``"r50"``.
        **overrides: Any ``RTDETRConfig`` field.

    Returns:
        The configuration.

    Raises:
        ValueError: Unknown variant or override name.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown RT-DETR variant {variant!r}; choose one of {sorted(VARIANTS)}")
    fields = {f.name for f in dataclasses.fields(RTDETRConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown RT-DETR override(s) {unknown}; valid names: {sorted(fields)}")
    return dataclasses.replace(VARIANTS[variant], **overrides)


def build_rtdetr(variant: str, num_classes: int = 80, **overrides: object) -> RTDETR:
    """Build an RT-DETRv2 model with random weights (nothing is downloaded).

    Args:
        variant: ``"r18"``, ``"r34"`` or ``"r50"``.
        num_classes: Number of object classes.
        **overrides: ``RTDETRConfig`` fields to change, e.g. ``num_queries=100``.

    Returns:
        The model, in training mode.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    cfg = rtdetr_config(variant, **overrides)
    backbone = PResNet(cfg.depth, (1, 2, 3), cfg.freeze_at, cfg.freeze_norm)
    encoder = HybridEncoder(
        in_channels=backbone.out_channels,
        feat_strides=backbone.out_strides,
        hidden_dim=cfg.hidden_dim,
        nhead=cfg.nhead,
        dim_feedforward=cfg.encoder_ffn_dim,
        num_encoder_layers=cfg.num_encoder_layers,
        expansion=cfg.expansion,
        depth_mult=cfg.depth_mult,
    )
    decoder = RTDETRDecoder(
        num_classes=num_classes,
        hidden_dim=cfg.hidden_dim,
        num_queries=cfg.num_queries,
        feat_channels=encoder.out_channels,
        feat_strides=encoder.out_strides,
        num_points=list(cfg.num_points),
        nhead=cfg.nhead,
        num_layers=cfg.num_decoder_layers,
        dim_feedforward=cfg.decoder_ffn_dim,
        num_denoising=cfg.num_denoising,
        label_noise_ratio=cfg.label_noise_ratio,
        box_noise_scale=cfg.box_noise_scale,
        eval_idx=cfg.eval_idx,
    )
    return RTDETR(backbone, encoder, decoder, channels_last=cfg.channels_last)
