"""Hungarian matching between predictions and ground truth (focal-form class cost)."""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from neo.models.rtdetr.box_ops import box_cxcywh_to_xyxy, generalized_box_iou


class HungarianMatcher(nn.Module):
    """One-to-one assignment minimising a weighted class + L1 + GIoU cost.

    The class cost is the focal-loss difference ``pos - neg`` at the target class,
    ``pos = α (1-p)^γ (-log p)``, ``neg = (1-α) p^γ (-log(1-p))``.

    Args:
        cost_class: Weight of the class cost.
        cost_bbox: Weight of the L1 cost between normalised cxcywh boxes.
        cost_giou: Weight of the negative GIoU cost.
        alpha: Focal α.
        gamma: Focal γ.
    """

    def __init__(
        self,
        cost_class: float = 2.0,
        cost_bbox: float = 5.0,
        cost_giou: float = 2.0,
        alpha: float = 0.25,
        gamma: float = 2.0,
    ) -> None:
        super().__init__()
        if cost_class == 0 and cost_bbox == 0 and cost_giou == 0:
            raise ValueError("at least one matching cost weight must be non-zero")
        self.cost_class = cost_class
        self.cost_bbox = cost_bbox
        self.cost_giou = cost_giou
        self.alpha = alpha
        self.gamma = gamma

    @torch.no_grad()
    def cost_matrix(
        self, logits: Tensor, boxes: Tensor, labels: Tensor, tgt_boxes: Tensor
    ) -> Tensor:
        """Cost ``(Q, N)`` between ``Q`` predictions and ``N`` targets of one image or a batch.

        Args:
            logits: ``(Q, C)`` class logits.
            boxes: ``(Q, 4)`` predicted cxcywh boxes.
            labels: ``(N,)`` target labels.
            tgt_boxes: ``(N, 4)`` target cxcywh boxes.

        Returns:
            The float32 cost matrix.
        """
        prob = torch.sigmoid(logits.float())[:, labels]
        boxes, tgt_boxes = boxes.float(), tgt_boxes.float()
        neg = (1 - self.alpha) * prob.pow(self.gamma) * (-(1 - prob + 1e-8).log())
        pos = self.alpha * (1 - prob).pow(self.gamma) * (-(prob + 1e-8).log())
        cost_class = pos - neg
        cost_bbox = torch.cdist(boxes, tgt_boxes, p=1)
        cost_giou = -generalized_box_iou(box_cxcywh_to_xyxy(boxes), box_cxcywh_to_xyxy(tgt_boxes))
        return (
            self.cost_bbox * cost_bbox + self.cost_class * cost_class + self.cost_giou * cost_giou
        )

    @torch.no_grad()
    def forward(
        self, outputs: dict[str, Tensor], targets: list[dict[str, Tensor]]
    ) -> list[tuple[Tensor, Tensor]]:
        """Match every image's predictions to its targets.

        Args:
            outputs: ``pred_logits`` (B, Q, C) and ``pred_boxes`` (B, Q, 4).
            targets: Per image ``labels`` (N,) and ``boxes`` (N, 4) cxcywh.

        Returns:
            Per image ``(pred_idx, tgt_idx)`` int64 CPU tensors of length ``min(Q, N)``.
        """
        bs, num_queries = outputs["pred_logits"].shape[:2]
        sizes = [len(t["boxes"]) for t in targets]
        empty = torch.zeros(0, dtype=torch.int64)
        if sum(sizes) == 0:
            return [(empty, empty) for _ in range(bs)]
        labels = torch.cat([t["labels"] for t in targets])
        tgt_boxes = torch.cat([t["boxes"] for t in targets])
        cost = self.cost_matrix(
            outputs["pred_logits"].flatten(0, 1),
            outputs["pred_boxes"].flatten(0, 1),
            labels,
            tgt_boxes,
        )
        cost = cost.view(bs, num_queries, -1).cpu()
        indices = []
        for i, c in enumerate(cost.split(sizes, -1)):
            if sizes[i] == 0:
                indices.append((empty, empty))
                continue
            rows, cols = linear_sum_assignment(c[i].numpy())
            indices.append(
                (torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64))
            )
        return indices
