"""Metric-learning losses of the ReID network: batch-hard triplet loss and center loss.

The identity loss is torch's ``F.cross_entropy(logits, labels, label_smoothing=0.1)``.
Boxes with a negative label (unknown identity, background) are never positives of one another:
they only serve as negatives of labelled anchors.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def pairwise_distances(features: Tensor) -> Tensor:
    """Euclidean distances between all rows, with the square root clamped away from 0.

    Args:
        features: (N, D).

    Returns:
        (N, N) distances.
    """
    squared_norms = features.square().sum(dim=1)
    squared = squared_norms[:, None] + squared_norms[None, :] - 2.0 * features @ features.T
    return squared.clamp(min=1e-12).sqrt()


def batch_hard_triplet_loss(
    features: Tensor, labels: Tensor, margin: float | None = 0.3, normalize: bool = False
) -> Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017) over a batch of P identities x K images.

    Each labelled anchor is paired with its farthest positive and its nearest negative. Anchors
    without a positive or without a negative in the batch are left out.

    Args:
        features: (N, D) features (the pooled vectors before the neck).
        labels: (N,) identities; negative labels are never positives (see the module doc).
        margin: ``relu(d_ap - d_an + margin)``; None: the soft margin ``softplus(d_ap - d_an)``.
        normalize: L2-normalise the features first.

    Returns:
        The mean loss over valid anchors, a scalar; 0 (still differentiable) when none is valid.
    """
    features = features.float()
    if normalize:
        features = F.normalize(features, dim=1)
    distances = pairwise_distances(features)
    same = labels[:, None] == labels[None, :]
    labelled = labels >= 0
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positives = same & ~eye & labelled[:, None]
    negatives = ~same | ~labelled[:, None]
    valid = labelled & positives.any(dim=1) & negatives.any(dim=1)
    if not valid.any():
        return features.sum() * 0.0
    hardest_positive = distances.masked_fill(~positives, float("-inf")).amax(dim=1)[valid]
    hardest_negative = distances.masked_fill(~negatives, float("inf")).amin(dim=1)[valid]
    gap = hardest_positive - hardest_negative
    losses = F.softplus(gap) if margin is None else F.relu(gap + margin)
    return losses.mean()


class CenterLoss(nn.Module):
    """Center loss (Wen et al. 2016): pulls each feature toward its identity's center.

    The loss is the batch mean of ``0.5 * ||f_i - c_{y_i}||²``; its gradient flows into the
    features only. In training mode each forward also moves the centers of the identities in the
    batch with the paper's rule ``c_j <- c_j - alpha * delta_j``, ``delta_j = sum_{i: y_i = j}
    (c_j - f_i) / (1 + n_j)``. Rows with a negative label are ignored. The centers are a buffer:
    with DistributedDataParallel (which broadcasts buffers from rank 0) only rank 0's updates
    are kept.

    Args:
        num_classes: identities.
        dim: feature dimension.
        alpha: center learning rate.
    """

    centers: Tensor

    def __init__(self, num_classes: int, dim: int, alpha: float = 0.5) -> None:
        super().__init__()
        self.alpha = alpha
        self.register_buffer("centers", torch.zeros(num_classes, dim))

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        """Loss of a batch (and, in training mode, the center update).

        Args:
            features: (N, dim).
            labels: (N,) identities in ``[0, num_classes)``, or negative to ignore the row.

        Returns:
            The scalar loss (0, still differentiable, when no row is labelled).

        Raises:
            ValueError: a label is ``>= num_classes``.
        """
        num_classes = self.centers.shape[0]
        if len(labels) and int(labels.max()) >= num_classes:
            raise ValueError(f"CenterLoss: label {int(labels.max())} >= num_classes {num_classes}")
        labelled = labels >= 0
        features, labels = features[labelled].float(), labels[labelled]
        if len(labels) == 0:
            return features.sum() * 0.0
        loss = 0.5 * (features - self.centers[labels]).square().sum(dim=1).mean()
        if self.training:
            self._update_centers(features.detach(), labels)
        return loss

    @torch.no_grad()
    def _update_centers(self, features: Tensor, labels: Tensor) -> None:
        num_classes = self.centers.shape[0]
        differences = self.centers[labels] - features.to(self.centers.dtype)
        sums = torch.zeros_like(self.centers).index_add_(0, labels, differences)
        counts = torch.bincount(labels, minlength=num_classes).to(self.centers.dtype)
        self.centers -= self.alpha * sums / (1.0 + counts)[:, None]

    def extra_repr(self) -> str:
        """Shows the sizes and alpha in the module's repr."""
        classes, dim = self.centers.shape
        return f"num_classes={classes}, dim={dim}, alpha={self.alpha}"
