"""Pooling, neck and classifier heads of the ReID network (bag of tricks, Luo et al. 2019)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class GeneralizedMeanPooling(nn.Module):
    """Generalised-mean (GeM) pooling of a feature map: ``(mean(x^p))^(1/p)`` per channel.

    p = 1 is average pooling, large p tends to max pooling. Values are clamped to ``eps`` first,
    as GeM is defined on non-negative maps (e.g. after a ReLU).

    Args:
        p: the exponent.
        learnable: learn p with the network (a parameter) or keep it fixed (a buffer).
        eps: smallest value before taking the power.
    """

    def __init__(self, p: float = 3.0, learnable: bool = True, eps: float = 1e-6) -> None:
        super().__init__()
        exponent = torch.full((1,), float(p))
        if learnable:
            self.p = nn.Parameter(exponent)
        else:
            self.register_buffer("p", exponent)
        self.eps = eps

    def forward(self, feature_map: Tensor) -> Tensor:
        """Pools a map.

        Args:
            feature_map: (N, C, h, w).

        Returns:
            (N, C) pooled vectors.
        """
        powered = feature_map.float().clamp(min=self.eps).pow(self.p)  # float: no fp16 overflow
        return powered.mean(dim=(-2, -1)).pow(1.0 / self.p)

    def extra_repr(self) -> str:
        """Shows p and eps in the module's repr."""
        return f"p={self.p.item():.4f}, eps={self.eps}"


class BNNeck(nn.BatchNorm1d):
    """BatchNorm1d between the pooled feature and the classifier, with a frozen zero bias.

    Freezing the shift keeps the normalised embedding centred, as in the bag of tricks.

    Args:
        dim: feature dimension.
    """

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)
        self.bias.requires_grad_(False)


class LinearHead(nn.Module):
    """Plain linear classifier without bias (weights drawn from N(0, 0.001²)).

    Args:
        dim: embedding dimension.
        num_classes: identities.
    """

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, dim))
        nn.init.normal_(self.weight, std=0.001)

    def forward(self, embeddings: Tensor, labels: Tensor | None = None) -> Tensor:
        """Class logits.

        Args:
            embeddings: (N, dim).
            labels: ignored (the signature matches the margin heads).

        Returns:
            (N, num_classes) logits.
        """
        return F.linear(embeddings, self.weight)


class _CosineHead(nn.Module):
    """Scaled cosine logits between L2-normalised embeddings and class weights."""

    def __init__(self, dim: int, num_classes: int, scale: float, margin: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, dim))
        nn.init.normal_(self.weight, std=0.01)
        self.scale = scale
        self.margin = margin

    def forward(self, embeddings: Tensor, labels: Tensor | None = None) -> Tensor:
        """Class logits, with the margin on the target class when labels are given.

        Args:
            embeddings: (N, dim).
            labels: (N,) class indices (training) or None (plain scaled cosines). Rows with a
                negative label get no margin.

        Returns:
            (N, num_classes) logits.
        """
        cosine = F.linear(F.normalize(embeddings.float()), F.normalize(self.weight.float()))
        if labels is None:
            return self.scale * cosine
        target = torch.zeros_like(cosine, dtype=torch.bool)
        labelled = labels >= 0
        target[labelled.nonzero().squeeze(1), labels[labelled]] = True
        return self.scale * torch.where(target, self.target_logit(cosine), cosine)

    def target_logit(self, cosine: Tensor) -> Tensor:
        """The cosine of the target class after the margin (all entries; the caller picks)."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        """Shows the sizes, scale and margin in the module's repr."""
        classes, dim = self.weight.shape
        return f"dim={dim}, num_classes={classes}, scale={self.scale}, margin={self.margin}"


class ArcFaceHead(_CosineHead):
    """ArcFace (additive angular margin, Deng et al. 2019): target logit ``s·cos(θ + m)``.

    ``cos(θ + m)`` only decreases while ``θ + m <= π``. Beyond (``θ > π - m``, i.e.
    ``cos θ < cos(π - m)``) the usual fallback ``cos θ - m·sin m`` is used instead, which stays
    monotonic and still lowers the target by a margin (the "th/mm" form of the reference code,
    without the "easy margin" variant).

    Args:
        dim: embedding dimension.
        num_classes: identities.
        scale: s, the logit scale.
        margin: m, the angular margin in radians.
    """

    def __init__(self, dim: int, num_classes: int, scale: float = 30.0, margin: float = 0.5):
        super().__init__(dim, num_classes, scale, margin)
        self.threshold = math.cos(math.pi - margin)
        self.fallback_margin = math.sin(math.pi - margin) * margin

    def target_logit(self, cosine: Tensor) -> Tensor:
        """``cos(θ + m)``, or ``cos θ - m·sin m`` where ``θ + m > π``."""
        sine = (1.0 - cosine.square()).clamp(min=1e-6).sqrt()  # finite gradient at |cos| = 1
        shifted = cosine * math.cos(self.margin) - sine * math.sin(self.margin)
        return torch.where(cosine > self.threshold, shifted, cosine - self.fallback_margin)


class CosFaceHead(_CosineHead):
    """CosFace (additive cosine margin, Wang et al. 2018): target logit ``s·(cos θ - m)``.

    Args:
        dim: embedding dimension.
        num_classes: identities.
        scale: s, the logit scale.
        margin: m, subtracted from the target cosine.
    """

    def __init__(self, dim: int, num_classes: int, scale: float = 30.0, margin: float = 0.35):
        super().__init__(dim, num_classes, scale, margin)

    def target_logit(self, cosine: Tensor) -> Tensor:
        """``cos θ - m``."""
        return cosine - self.margin
