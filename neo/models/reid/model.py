"""The ReID network: backbone, pooling, BNNeck and an identity classifier (bag of tricks)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from neo.models.reid.backbone import build_backbone
from neo.models.reid.heads import (
    ArcFaceHead,
    BNNeck,
    CosFaceHead,
    GeneralizedMeanPooling,
    LinearHead,
)

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
POOLINGS = ("avg", "gem")
NECKS = ("bnneck", "none")
HEADS = ("linear", "arcface", "cosface")


def normalize(images: Tensor) -> Tensor:
    """Turns uint8 images into float images normalised with the ImageNet mean and std.

    Args:
        images: uint8 (..., 3, H, W), e.g. a batch (N, 3, H, W).

    Returns:
        float32 images of the same shape, on the same device.

    Raises:
        TypeError: the images are not uint8.
    """
    if images.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 images, got {images.dtype}")
    mean = torch.tensor(MEAN, device=images.device).view(3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(3, 1, 1)
    return (images.float() / 255.0 - mean) / std


class ReIDModel(nn.Module):
    """Strong-baseline ReID network (Luo et al. 2019): backbone, pooling, BNNeck, classifier.

    ``forward`` gives the pooled feature (for the triplet/center losses) and the embedding after
    the neck (for retrieval; L2-normalise it before comparing); ``classify`` gives identity
    logits from the embedding (for the cross-entropy loss).

    Args:
        backbone: timm model name (see ``build_backbone``).
        num_classes: training identities; 0 builds no classifier (retrieval only).
        pretrained: download timm's pretrained backbone weights.
        weights: local backbone weights file to start from.
        last_stride: 1 removes the last stage's downsampling (bag of tricks), 2 keeps it.
        pooling: ``avg`` (global average) or ``gem`` (generalised mean, learnable p).
        neck: ``bnneck`` (BatchNorm with frozen bias) or ``none``.
        head: ``linear``, ``arcface`` or ``cosface`` classifier.
        head_scale: logit scale of the arcface/cosface heads.
        head_margin: margin of the arcface/cosface heads; None: the head's default (0.5 / 0.35).
    """

    def __init__(
        self,
        backbone: str = "resnet50",
        num_classes: int = 0,
        pretrained: bool = False,
        weights: Path | None = None,
        last_stride: int = 1,
        pooling: Literal["avg", "gem"] = "avg",
        neck: Literal["bnneck", "none"] = "bnneck",
        head: Literal["linear", "arcface", "cosface"] = "linear",
        head_scale: float = 30.0,
        head_margin: float | None = None,
    ) -> None:
        super().__init__()
        _check_choice("pooling", pooling, POOLINGS)
        _check_choice("neck", neck, NECKS)
        _check_choice("head", head, HEADS)
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        if head == "linear" and head_margin is not None:
            raise ValueError("head_margin is only used by the arcface and cosface heads")
        self.backbone, self._feature_dim = build_backbone(
            backbone, pretrained=pretrained, weights=weights, last_stride=last_stride
        )
        self.pool = GeneralizedMeanPooling() if pooling == "gem" else _AveragePooling()
        self.neck = BNNeck(self._feature_dim) if neck == "bnneck" else None
        self.head = _build_head(head, self._feature_dim, num_classes, head_scale, head_margin)

    @property
    def feature_dim(self) -> int:
        """Dimension of the features and embeddings."""
        return self._feature_dim

    @property
    def num_classes(self) -> int:
        """Identities of the classifier (0 without one)."""
        return 0 if self.head is None else int(self.head.weight.shape[0])

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Features and embeddings of a batch of images.

        Args:
            images: float normalised images (N, 3, H, W) (see ``normalize``).

        Returns:
            ``(features, embeddings)``, both (N, feature_dim): the pooled vector before the neck
            and the vector after it (the same tensor without a neck).
        """
        features = self.pool(self.backbone(images))
        embeddings = features if self.neck is None else self.neck(features)
        return features, embeddings

    def classify(self, embeddings: Tensor, labels: Tensor | None = None) -> Tensor:
        """Identity logits of embeddings.

        Args:
            embeddings: (N, feature_dim), the second output of ``forward``.
            labels: (N,) identities during training, so margin heads apply their margin; None
                gives plain logits.

        Returns:
            (N, num_classes) logits.

        Raises:
            RuntimeError: the model was built without a classifier (num_classes=0).
        """
        if self.head is None:
            raise RuntimeError(
                "ReIDModel has no classifier (num_classes=0); build it with num_classes > 0"
            )
        return self.head(embeddings, labels)


class _AveragePooling(nn.Module):
    """Global average pooling of a map (N, C, h, w) into vectors (N, C)."""

    def forward(self, feature_map: Tensor) -> Tensor:
        return feature_map.mean(dim=(-2, -1))


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _build_head(
    head: str, dim: int, num_classes: int, scale: float, margin: float | None
) -> nn.Module | None:
    if num_classes == 0:
        return None
    if head == "linear":
        return LinearHead(dim, num_classes)
    head_class = ArcFaceHead if head == "arcface" else CosFaceHead
    if margin is None:
        return head_class(dim, num_classes, scale=scale)
    return head_class(dim, num_classes, scale=scale, margin=margin)
