"""Contrastive denoising query groups for RT-DETR training."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from neo.models.rtdetr.box_ops import box_cxcywh_to_xyxy, box_xyxy_to_cxcywh, inverse_sigmoid


@dataclass
class DenoisingGroups:
    """Denoising queries and the bookkeeping the decoder and the criterion need.

    Attributes:
        content: ``(B, num_dn, hidden)`` class-embedding content of the noised labels.
        boxes_unact: ``(B, num_dn, 4)`` noised boxes in inverse-sigmoid form.
        attn_mask: ``(num_dn + num_queries,)*2`` bool self-attention mask (True = blocked).
        meta: ``dn_positive_idx`` (per image, positive query indices), ``dn_num_group`` and
            ``dn_num_split`` (``[num_dn, num_queries]``).
    """

    content: Tensor
    boxes_unact: Tensor
    attn_mask: Tensor
    meta: dict


def build_denoising_groups(
    targets: list[dict[str, Tensor]],
    num_classes: int,
    num_queries: int,
    class_embed: nn.Embedding,
    num_denoising: int = 100,
    label_noise_ratio: float = 0.5,
    box_noise_scale: float = 1.0,
) -> DenoisingGroups | None:
    """Make positive and negative noised copies of the ground truth, in groups.

    ``num_denoising // max_objects`` groups (at least one) each hold every image's boxes twice:
    positives (box corners moved by less than half the box size) and negatives (moved by one to
    two halves). A fraction ``label_noise_ratio / 2`` of the labels is replaced at random. Groups
    cannot see each other and the matching queries cannot see any denoising query. A batch without
    any box still gets one dummy query pair so that every rank runs the same graph.

    Args:
        targets: Per image ``labels`` (N,) and normalised ``boxes`` (N, 4) cxcywh.
        num_classes: Number of classes; ``num_classes`` is the padding label.
        num_queries: Number of matching queries following the denoising ones.
        class_embed: Embedding with ``num_classes + 1`` rows.
        num_denoising: Denoising query budget.
        label_noise_ratio: Label noise ratio.
        box_noise_scale: Box noise scale.

    Returns:
        The groups, or None when ``num_denoising <= 0``.
    """
    if num_denoising <= 0:
        return None
    num_gts = [len(t["labels"]) for t in targets]
    device = targets[0]["labels"].device
    max_gt = max(num_gts)
    empty_batch = max_gt == 0
    if empty_batch:
        max_gt, num_group = 1, 1
    else:
        num_group = max(num_denoising // max_gt, 1)
    bs = len(targets)

    labels = torch.full([bs, max_gt], num_classes, dtype=torch.int32, device=device)
    boxes = torch.zeros([bs, max_gt, 4], device=device)
    if empty_batch:
        boxes[..., :2] = 0.5
        boxes[..., 2:] = 0.1
    valid = torch.zeros([bs, max_gt], dtype=torch.bool, device=device)
    for i, n in enumerate(num_gts):
        if n > 0:
            labels[i, :n] = targets[i]["labels"].to(torch.int32)
            boxes[i, :n] = targets[i]["boxes"].to(boxes.dtype)
            valid[i, :n] = True

    labels = labels.tile([1, 2 * num_group])
    boxes = boxes.tile([1, 2 * num_group, 1])
    valid = valid.tile([1, 2 * num_group])
    negative = torch.zeros([bs, 2 * max_gt, 1], device=device)
    negative[:, max_gt:] = 1
    negative = negative.tile([1, num_group, 1])
    positive = (1 - negative).squeeze(-1) * valid
    positive_idx = torch.nonzero(positive)[:, 1].split([n * num_group for n in num_gts])
    num_dn = 2 * max_gt * num_group

    if label_noise_ratio > 0:
        flip = torch.rand_like(labels, dtype=torch.float) < (label_noise_ratio * 0.5)
        random_labels = torch.randint_like(flip, 0, num_classes, dtype=labels.dtype)
        labels = torch.where(flip & valid, random_labels, labels)

    if box_noise_scale > 0:
        corners = box_cxcywh_to_xyxy(boxes)
        half_wh = torch.tile(boxes[..., 2:] * 0.5, [1, 1, 2]) * box_noise_scale
        sign = torch.randint_like(boxes, 0, 2) * 2.0 - 1.0
        magnitude = torch.rand_like(boxes)
        magnitude = (magnitude + 1.0) * negative + magnitude * (1 - negative)
        corners = (corners + sign * magnitude * half_wh).clip(min=0.0, max=1.0)
        boxes = box_xyxy_to_cxcywh(corners)
    boxes_unact = inverse_sigmoid(boxes)
    content = class_embed(labels)

    size = num_dn + num_queries
    attn_mask = torch.zeros([size, size], dtype=torch.bool, device=device)
    attn_mask[num_dn:, :num_dn] = True
    group = torch.arange(num_dn, device=device) // (2 * max_gt)
    attn_mask[:num_dn, :num_dn] = group[:, None] != group[None, :]

    meta = {
        "dn_positive_idx": positive_idx,
        "dn_num_group": num_group,
        "dn_num_split": [num_dn, num_queries],
    }
    return DenoisingGroups(content, boxes_unact, attn_mask, meta)
