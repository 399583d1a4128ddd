"""Turn RT-DETR outputs into per-image pixel detections."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neo.models.rtdetr.box_ops import box_cxcywh_to_xyxy


class RTDETRPostProcessor(nn.Module):
    """Sigmoid scores, top-k over (queries x classes), boxes scaled to pixels.

    One query may yield several detections with different classes (as in the official
    RT-DETR evaluation); no NMS is applied.

    Args:
        num_top_queries: Detections kept per image.
    """

    def __init__(self, num_top_queries: int = 300) -> None:
        super().__init__()
        self.num_top_queries = num_top_queries

    @torch.no_grad()
    def forward(self, outputs: dict[str, Tensor], sizes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Select detections.

        Args:
            outputs: ``pred_logits`` (B, Q, C) and ``pred_boxes`` (B, Q, 4) normalised cxcywh.
            sizes: ``(B, 2)`` ``(height, width)`` of the pixel frame the boxes are scaled to.

        Returns:
            ``boxes`` (B, K, 4) xyxy pixels, ``scores`` (B, K), ``labels`` (B, K) int64, each image
            sorted by decreasing score, ``K = min(num_top_queries, Q * C)``. Batched tensor
            operations only, so the step exports with a dynamic batch and image size.
        """
        logits, boxes = outputs["pred_logits"], outputs["pred_boxes"]
        if sizes.shape != (logits.shape[0], 2):
            raise ValueError(
                f"sizes must have shape ({logits.shape[0]}, 2), got {tuple(sizes.shape)}"
            )
        num_classes = logits.shape[-1]
        scale = sizes.flip(-1).repeat(1, 2).unsqueeze(1).to(torch.float32)
        pixel_boxes = box_cxcywh_to_xyxy(boxes.float()) * scale
        scores = torch.sigmoid(logits.float()).flatten(1)
        k = min(self.num_top_queries, scores.shape[1])
        scores, index = torch.topk(scores, k, dim=-1)
        query = torch.div(index, num_classes, rounding_mode="floor")
        labels = index - query * num_classes
        picked = pixel_boxes.gather(1, query.unsqueeze(-1).expand(-1, -1, 4))
        return picked, scores, labels
