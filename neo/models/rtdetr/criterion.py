"""RT-DETRv2 training loss: varifocal + L1 + GIoU on all decoder, encoder and denoising outputs."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from neo.models.rtdetr.box_ops import (
    box_cxcywh_to_xyxy,
    paired_box_iou,
    paired_generalized_box_iou,
)
from neo.models.rtdetr.matcher import HungarianMatcher

Indices = list[tuple[Tensor, Tensor]]


def _num_boxes(targets: list[dict[str, Tensor]], device: torch.device) -> float:
    """Average number of target boxes per rank (all-reduced when distributed), at least 1."""
    n = torch.as_tensor([float(sum(len(t["labels"]) for t in targets))], device=device)
    world = 1
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(n)
        world = dist.get_world_size()
    return torch.clamp(n / world, min=1).item()


class RTDETRCriterion(nn.Module):
    """Set-prediction loss of RT-DETRv2.

    Keys of the returned dict: ``loss_vfl``, ``loss_bbox``, ``loss_giou`` for the final output, with
    suffixes ``_aux_{i}`` (earlier decoder layers), ``_dn_{i}`` (denoising queries of each layer)
    and ``_enc_0`` (encoder top-k). Values are already weighted; their sum is the total loss.
    All terms are computed in float32.

    Args:
        num_classes: Number of classes.
        matcher: Hungarian matcher (default: class 2, L1 5, GIoU 2, focal α 0.25 γ 2).
        weight_vfl: Weight of the varifocal loss.
        weight_bbox: Weight of the L1 loss.
        weight_giou: Weight of the GIoU loss.
        alpha: Varifocal α.
        gamma: Varifocal γ.
    """

    def __init__(
        self,
        num_classes: int = 80,
        matcher: HungarianMatcher | None = None,
        weight_vfl: float = 1.0,
        weight_bbox: float = 5.0,
        weight_giou: float = 2.0,
        alpha: float = 0.75,
        gamma: float = 2.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.matcher = matcher if matcher is not None else HungarianMatcher()
        self.weights = {"loss_vfl": weight_vfl, "loss_bbox": weight_bbox, "loss_giou": weight_giou}
        self.alpha = alpha
        self.gamma = gamma

    @staticmethod
    def _gather(
        outputs: dict[str, Tensor], targets: list[dict[str, Tensor]], indices: Indices
    ) -> tuple[tuple[Tensor, Tensor], Tensor, Tensor, Tensor]:
        device = outputs["pred_boxes"].device
        batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)]).to(
            device
        )
        src_idx = torch.cat([src for src, _ in indices]).to(device)
        tgt_boxes = torch.cat([t["boxes"][j.to(device)] for t, (_, j) in zip(targets, indices)])
        tgt_labels = torch.cat([t["labels"][j.to(device)] for t, (_, j) in zip(targets, indices)])
        src_boxes = outputs["pred_boxes"][batch_idx, src_idx].float()
        return (batch_idx, src_idx), src_boxes, tgt_boxes.float(), tgt_labels.long()

    def _losses(
        self,
        outputs: dict[str, Tensor],
        targets: list[dict[str, Tensor]],
        indices: Indices,
        num_boxes: float,
    ) -> dict[str, Tensor]:
        idx, src_boxes, tgt_boxes, tgt_labels = self._gather(outputs, targets, indices)
        logits = outputs["pred_logits"].float()
        src_xyxy, tgt_xyxy = box_cxcywh_to_xyxy(src_boxes), box_cxcywh_to_xyxy(tgt_boxes)

        # Varifocal: positives target their IoU, negatives are down-weighted by α p^γ.
        ious = paired_box_iou(src_xyxy, tgt_xyxy).detach()
        target_classes = torch.full(
            logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device
        )
        target_classes[idx] = tgt_labels
        onehot = F.one_hot(target_classes, self.num_classes + 1)[..., :-1].to(logits.dtype)
        iou_map = torch.zeros(logits.shape[:2], dtype=logits.dtype, device=logits.device)
        iou_map[idx] = ious
        target_score = iou_map.unsqueeze(-1) * onehot
        prob = torch.sigmoid(logits).detach()
        weight = self.alpha * prob.pow(self.gamma) * (1 - onehot) + target_score
        vfl = F.binary_cross_entropy_with_logits(
            logits, target_score, weight=weight, reduction="none"
        )
        loss_vfl = vfl.mean(1).sum() * logits.shape[1] / num_boxes

        loss_bbox = F.l1_loss(src_boxes, tgt_boxes, reduction="none").sum() / num_boxes
        loss_giou = (1 - paired_generalized_box_iou(src_xyxy, tgt_xyxy)).sum() / num_boxes
        raw = {"loss_vfl": loss_vfl, "loss_bbox": loss_bbox, "loss_giou": loss_giou}
        return {k: v * self.weights[k] for k, v in raw.items()}

    @staticmethod
    def denoising_indices(dn_meta: dict, targets: list[dict[str, Tensor]]) -> Indices:
        """Fixed assignment of positive denoising queries to their source boxes."""
        positive_idx, num_group = dn_meta["dn_positive_idx"], dn_meta["dn_num_group"]
        indices = []
        for i, t in enumerate(targets):
            n = len(t["labels"])
            device = t["labels"].device
            if n > 0:
                gt_idx = torch.arange(n, dtype=torch.int64, device=device).tile(num_group)
                if len(positive_idx[i]) != len(gt_idx):
                    raise ValueError("denoising meta does not match the targets")
                indices.append((positive_idx[i], gt_idx))
            else:
                empty = torch.zeros(0, dtype=torch.int64, device=device)
                indices.append((empty, empty))
        return indices

    def forward(self, outputs: dict, targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """Compute all weighted loss terms.

        Args:
            outputs: Model training outputs.
            targets: Per image ``labels`` (N,) int64 and ``boxes`` (N, 4) normalised cxcywh.

        Returns:
            Weighted loss terms; ``sum(losses.values())`` is the total loss.
        """
        num_boxes = _num_boxes(targets, outputs["pred_logits"].device)
        main = {"pred_logits": outputs["pred_logits"], "pred_boxes": outputs["pred_boxes"]}
        losses = self._losses(main, targets, self.matcher(main, targets), num_boxes)

        for i, aux in enumerate(outputs.get("aux_outputs", [])):
            terms = self._losses(aux, targets, self.matcher(aux, targets), num_boxes)
            losses.update({f"{k}_aux_{i}": v for k, v in terms.items()})

        if "dn_aux_outputs" in outputs:
            meta = outputs["dn_meta"]
            indices = self.denoising_indices(meta, targets)
            dn_num_boxes = num_boxes * meta["dn_num_group"]
            for i, aux in enumerate(outputs["dn_aux_outputs"]):
                terms = self._losses(aux, targets, indices, dn_num_boxes)
                losses.update({f"{k}_dn_{i}": v for k, v in terms.items()})

        for i, aux in enumerate(outputs.get("enc_aux_outputs", [])):
            terms = self._losses(aux, targets, self.matcher(aux, targets), num_boxes)
            losses.update({f"{k}_enc_{i}": v for k, v in terms.items()})
        return losses
