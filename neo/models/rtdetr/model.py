"""RT-DETR detector: backbone, hybrid encoder and decoder composed."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neo.models.rtdetr.backbone import PResNet
from neo.models.rtdetr.decoder import RTDETRDecoder
from neo.models.rtdetr.hybrid_encoder import HybridEncoder
from neo.models.rtdetr.positional_encoding import is_tracing

SIZE_DIVISOR = 32


class RTDETR(nn.Module):
    """RT-DETR(v2) detector.

    Images are RGB scaled to [0, 1] without mean/std normalisation, as in the official
    RT-DETR pipeline (its transforms end with a ``[0, 1]`` conversion and no ``Normalize``).
    Height and width must be multiples of 32; any such size works (positional embeddings and
    anchors are computed for the actual size).

    Args:
        backbone: Feature extractor returning the stride 8/16/32 maps.
        encoder: Hybrid encoder.
        decoder: Transformer decoder.
        channels_last: Convolutions in channels-last memory layout (faster on CPUs and
            tensor-core GPUs; outputs equal to the default layout's up to float rounding).
    """

    def __init__(
        self,
        backbone: PResNet,
        encoder: HybridEncoder,
        decoder: RTDETRDecoder,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.channels_last = channels_last
        self.backbone = backbone
        self.decoder = decoder
        self.encoder = encoder

    @property
    def num_classes(self) -> int:
        """Number of object classes."""
        return self.decoder.num_classes

    def forward(self, images: Tensor, targets: list[dict[str, Tensor]] | None = None) -> dict:
        """Detect objects.

        Args:
            images: ``(B, 3, H, W)`` RGB in [0, 1], ``H`` and ``W`` multiples of 32.
            targets: Training only: per image ``labels`` (int64, 0..C-1) and ``boxes``
                (normalised ``cx, cy, w, h`` relative to ``H, W``).

        Returns:
            ``pred_logits`` (B, Q, C) and ``pred_boxes`` (B, Q, 4) normalised cxcywh; in training
            also ``aux_outputs``, ``enc_aux_outputs``, ``dn_aux_outputs`` and ``dn_meta``.
        """
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        h, w = images.shape[-2:]
        if h % SIZE_DIVISOR or w % SIZE_DIVISOR:
            raise ValueError(
                f"image height and width must be multiples of {SIZE_DIVISOR}, got {h}x{w} "
                f"(pad, e.g. 1080 -> 1088)"
            )
        if self.channels_last and not is_tracing():
            images = images.contiguous(memory_format=torch.channels_last)
        feats = self.encoder(self.backbone(images))
        return self.decoder(feats, targets)

    def deploy(self) -> RTDETR:
        """Switch to eval mode and fuse RepVGG branches for inference."""
        self.eval()
        for module in self.modules():
            convert = getattr(module, "convert_to_deploy", None)
            if convert is not None and module is not self:
                convert()
        return self
