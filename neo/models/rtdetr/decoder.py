"""RT-DETRv2 decoder: query selection from encoder tokens, deformable decoder, denoising."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from neo.models.rtdetr.box_ops import inverse_sigmoid
from neo.models.rtdetr.deformable_attention import MSDeformableAttention
from neo.models.rtdetr.denoising import build_denoising_groups
from neo.models.rtdetr.positional_encoding import is_tracing


class MLP(nn.Module):
    """Plain multi-layer perceptron with ReLU between layers.

    Args:
        input_dim: Input width.
        hidden_dim: Hidden width.
        output_dim: Output width.
        num_layers: Number of linear layers.
    """

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out))
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        """Apply the layers."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.act(x)
        return x


class TransformerDecoderLayer(nn.Module):
    """Post-norm decoder layer: self-attention, deformable cross-attention, FFN.

    Args:
        d_model: Query width.
        n_head: Attention heads.
        dim_feedforward: FFN hidden width.
        dropout: Dropout probability.
        n_levels: Feature levels.
        n_points: Sampling points per level.
    """

    def __init__(
        self,
        d_model: int = 256,
        n_head: int = 8,
        dim_feedforward: int = 1024,
        dropout: float = 0.0,
        n_levels: int = 3,
        n_points: int | Sequence[int] = 4,
    ) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, n_head, dropout=dropout, batch_first=True)
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.cross_attn = MSDeformableAttention(d_model, n_head, n_levels, n_points)
        self.dropout2 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.activation = nn.ReLU()
        self.dropout3 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.dropout4 = nn.Dropout(dropout)
        self.norm3 = nn.LayerNorm(d_model)
        nn.init.xavier_uniform_(self.linear1.weight)
        nn.init.xavier_uniform_(self.linear2.weight)

    def forward(
        self,
        target: Tensor,
        reference_boxes: Tensor,
        memory: Tensor,
        spatial_shapes: Sequence[tuple[int, int]],
        attn_mask: Tensor | None,
        query_pos: Tensor,
    ) -> Tensor:
        """Update queries ``target`` (B, Q, C) given reference boxes (B, Q, 1, 4)."""
        q = k = target + query_pos
        attn, _ = self.self_attn(q, k, value=target, attn_mask=attn_mask, need_weights=False)
        target = self.norm1(target + self.dropout1(attn))
        cross = self.cross_attn(target + query_pos, reference_boxes, memory, spatial_shapes)
        target = self.norm2(target + self.dropout2(cross))
        ffn = self.linear2(self.dropout3(self.activation(self.linear1(target))))
        return self.norm3(target + self.dropout4(ffn))


class TransformerDecoder(nn.Module):
    """Stack of decoder layers with iterative box refinement.

    Args:
        layers: The decoder layers.
        eval_idx: Layer whose output is returned at inference (negative counts from the end).
    """

    def __init__(self, layers: list[TransformerDecoderLayer], eval_idx: int = -1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.num_layers = len(layers)
        self.eval_idx = eval_idx if eval_idx >= 0 else self.num_layers + eval_idx

    def forward(
        self,
        target: Tensor,
        ref_unact: Tensor,
        memory: Tensor,
        spatial_shapes: Sequence[tuple[int, int]],
        bbox_head: nn.ModuleList,
        score_head: nn.ModuleList,
        query_pos_head: MLP,
        attn_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Return stacked boxes (L, B, Q, 4) and logits (L, B, Q, C); L = 1 at inference."""
        boxes_out, logits_out = [], []
        ref_detached = torch.sigmoid(ref_unact)
        ref = ref_detached
        output = target
        for i, layer in enumerate(self.layers):
            query_pos = query_pos_head(ref_detached)
            output = layer(
                output, ref_detached.unsqueeze(2), memory, spatial_shapes, attn_mask, query_pos
            )
            delta = bbox_head[i](output)
            new_ref = torch.sigmoid(delta + inverse_sigmoid(ref_detached))
            if self.training:
                logits_out.append(score_head[i](output))
                # Later layers' boxes also take gradient through the previous (undetached) box.
                boxes_out.append(new_ref if i == 0 else torch.sigmoid(delta + inverse_sigmoid(ref)))
            elif i == self.eval_idx:
                logits_out.append(score_head[i](output))
                boxes_out.append(new_ref)
                break
            ref = new_ref
            ref_detached = new_ref.detach()
        return torch.stack(boxes_out), torch.stack(logits_out)


def bias_init_with_prob(prior_prob: float = 0.01) -> float:
    """Logit bias giving sigmoid probability ``prior_prob``."""
    return float(-math.log((1 - prior_prob) / prior_prob))


class RTDETRDecoder(nn.Module):
    """RT-DETRv2 transformer decoder head (the official ``RTDETRTransformerv2``).

    Args:
        num_classes: Number of classes.
        hidden_dim: Query width.
        num_queries: Number of queries selected from the encoder tokens.
        feat_channels: Channels of the encoder levels.
        feat_strides: Strides of the encoder levels.
        num_points: Sampling points per level in cross-attention.
        nhead: Attention heads.
        num_layers: Decoder layers.
        dim_feedforward: FFN width.
        dropout: Dropout probability.
        num_denoising: Denoising query budget (0 disables denoising).
        label_noise_ratio: Denoising label noise.
        box_noise_scale: Denoising box noise.
        eval_idx: Decoder layer used at inference.
        anchor_eps: Anchors with a coordinate outside ``(eps, 1 - eps)`` are masked.
        anchor_grid_size: Anchor size at the finest level (doubles per level).
    """

    def __init__(
        self,
        num_classes: int = 80,
        hidden_dim: int = 256,
        num_queries: int = 300,
        feat_channels: Sequence[int] = (256, 256, 256),
        feat_strides: Sequence[int] = (8, 16, 32),
        num_points: int | Sequence[int] = 4,
        nhead: int = 8,
        num_layers: int = 6,
        dim_feedforward: int = 1024,
        dropout: float = 0.0,
        num_denoising: int = 100,
        label_noise_ratio: float = 0.5,
        box_noise_scale: float = 1.0,
        eval_idx: int = -1,
        anchor_eps: float = 1e-2,
        anchor_grid_size: float = 0.05,
    ) -> None:
        super().__init__()
        if len(feat_channels) != len(feat_strides):
            raise ValueError("feat_channels and feat_strides must have the same length")
        self.num_classes = num_classes
        self.hidden_dim = hidden_dim
        self.num_queries = num_queries
        self.feat_strides = list(feat_strides)
        self.num_levels = len(feat_channels)
        self.num_denoising = num_denoising
        self.label_noise_ratio = label_noise_ratio
        self.box_noise_scale = box_noise_scale
        self.anchor_eps = anchor_eps
        self.anchor_grid_size = anchor_grid_size
        self._anchor_cache: dict[tuple, tuple[Tensor, Tensor]] = {}

        self.input_proj = nn.ModuleList(
            nn.Sequential(
                OrderedDict(
                    [
                        ("conv", nn.Conv2d(c, hidden_dim, 1, bias=False)),
                        ("norm", nn.BatchNorm2d(hidden_dim)),
                    ]
                )
            )
            for c in feat_channels
        )
        layers = [
            TransformerDecoderLayer(
                hidden_dim, nhead, dim_feedforward, dropout, self.num_levels, num_points
            )
            for _ in range(num_layers)
        ]
        self.decoder = TransformerDecoder(layers, eval_idx)
        if num_denoising > 0:
            self.denoising_class_embed = nn.Embedding(
                num_classes + 1, hidden_dim, padding_idx=num_classes
            )
        self.query_pos_head = MLP(4, 2 * hidden_dim, hidden_dim, 2)
        self.enc_output = nn.Sequential(
            OrderedDict(
                [("proj", nn.Linear(hidden_dim, hidden_dim)), ("norm", nn.LayerNorm(hidden_dim))]
            )
        )
        self.enc_score_head = nn.Linear(hidden_dim, num_classes)
        self.enc_bbox_head = MLP(hidden_dim, hidden_dim, 4, 3)
        self.dec_score_head = nn.ModuleList(
            nn.Linear(hidden_dim, num_classes) for _ in range(num_layers)
        )
        self.dec_bbox_head = nn.ModuleList(
            MLP(hidden_dim, hidden_dim, 4, 3) for _ in range(num_layers)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise heads (prior 0.01 class bias, zero box deltas) and projections."""
        bias = bias_init_with_prob(0.01)
        for score, box in [
            (self.enc_score_head, self.enc_bbox_head),
            *zip(self.dec_score_head, self.dec_bbox_head),
        ]:
            nn.init.constant_(score.bias, bias)
            nn.init.zeros_(box.layers[-1].weight)
            nn.init.zeros_(box.layers[-1].bias)
        nn.init.xavier_uniform_(self.enc_output.proj.weight)
        nn.init.xavier_uniform_(self.query_pos_head.layers[0].weight)
        nn.init.xavier_uniform_(self.query_pos_head.layers[1].weight)
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj.conv.weight)
        if self.num_denoising > 0:
            self.reset_class_embedding()

    def reset_class_embedding(self) -> None:
        """Re-draw the denoising class embedding (normal, padding row zero)."""
        with torch.no_grad():
            nn.init.normal_(self.denoising_class_embed.weight)
            self.denoising_class_embed.weight[self.num_classes].zero_()

    def anchors(
        self, spatial_shapes: Sequence[tuple[int, int]], device: torch.device
    ) -> tuple[Tensor, Tensor]:
        """Anchors ``(1, N, 4)`` in inverse-sigmoid form (inf where invalid) and the valid mask.

        One anchor per cell: centre of the cell, ``w = h = grid_size * 2**level``. Computed in
        float32 and cached per (shapes, device); computed from the symbolic sizes, uncached,
        while traced or exported.
        """
        if is_tracing():
            return self._compute_anchors(spatial_shapes, device)
        key = (tuple((int(h), int(w)) for h, w in spatial_shapes), torch.device(device))
        cached = self._anchor_cache.get(key)
        if cached is None:
            cached = self._anchor_cache[key] = self._compute_anchors(key[0], device)
        return cached

    def _compute_anchors(
        self, spatial_shapes: Sequence[tuple[int, int]], device: torch.device
    ) -> tuple[Tensor, Tensor]:
        per_level = []
        for lvl, (h, w) in enumerate(spatial_shapes):
            gy, gx = torch.meshgrid(
                torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij"
            )
            xy = torch.stack([(gx.float() + 0.5) / w, (gy.float() + 0.5) / h], -1)
            wh = torch.full_like(xy, self.anchor_grid_size * (2.0**lvl))
            per_level.append(torch.cat([xy, wh], -1).reshape(1, h * w, 4))
        anchors = torch.cat(per_level, 1)
        valid = ((anchors > self.anchor_eps) & (anchors < 1 - self.anchor_eps)).all(
            -1, keepdim=True
        )
        anchors = torch.log(anchors / (1 - anchors))
        anchors = torch.where(valid, anchors, torch.inf)
        return anchors, valid

    def _flatten_levels(self, feats: list[Tensor]) -> tuple[Tensor, list[tuple[int, int]]]:
        flat, shapes = [], []
        for proj, feat in zip(self.input_proj, feats):
            x = proj(feat)
            shapes.append((x.shape[2], x.shape[3]))
            flat.append(x.flatten(2).permute(0, 2, 1))
        return torch.cat(flat, 1), shapes

    def _select_queries(
        self, memory: Tensor, spatial_shapes: list[tuple[int, int]]
    ) -> tuple[Tensor, Tensor, Tensor]:
        if memory.shape[1] < self.num_queries:
            raise ValueError(
                f"input too small: {memory.shape[1]} encoder tokens for {self.num_queries} queries"
            )
        anchors, valid = self.anchors(spatial_shapes, memory.device)
        memory = valid.to(memory.dtype) * memory
        # Every token is scored to pick the queries, but only the picked ones get boxes and
        # gradients: the heads run again on those rows alone (row-wise ops, so the values are
        # the same as computed over all tokens) instead of keeping the whole map for backward.
        with torch.no_grad():
            scores = self.enc_score_head(self.enc_output(memory)).max(-1).values
        idx = torch.topk(scores, self.num_queries, dim=-1).indices.unsqueeze(-1)
        picked = memory.gather(1, idx.expand(-1, -1, memory.shape[-1]))
        topk_memory = self.enc_output(picked)
        topk_logits = self.enc_score_head(topk_memory)
        topk_anchors = anchors.expand(memory.shape[0], -1, -1).gather(1, idx.expand(-1, -1, 4))
        topk_coords = self.enc_bbox_head(topk_memory) + topk_anchors
        return topk_memory, topk_logits, topk_coords

    def forward(self, feats: list[Tensor], targets: list[dict[str, Tensor]] | None = None) -> dict:
        """Decode encoder maps into class logits and normalised cxcywh boxes.

        Args:
            feats: Encoder maps, fine to coarse.
            targets: Training targets (needed for denoising in training mode).

        Returns:
            ``pred_logits`` (B, Q, C) and ``pred_boxes`` (B, Q, 4); in training also
            ``aux_outputs``, ``enc_aux_outputs`` and, with denoising, ``dn_aux_outputs`` and
            ``dn_meta``.
        """
        if len(feats) != self.num_levels:
            raise ValueError(f"decoder expects {self.num_levels} levels, got {len(feats)}")
        memory, shapes = self._flatten_levels(feats)

        dn = None
        if self.training and self.num_denoising > 0:
            if targets is None:
                raise ValueError("targets are required in training mode (denoising queries)")
            dn = build_denoising_groups(
                targets,
                self.num_classes,
                self.num_queries,
                self.denoising_class_embed,
                self.num_denoising,
                self.label_noise_ratio,
                self.box_noise_scale,
            )

        topk_memory, topk_logits, topk_coords = self._select_queries(memory, shapes)
        content = topk_memory.detach()
        ref_unact = topk_coords.detach()
        if dn is not None:
            content = torch.cat([dn.content.to(content.dtype), content], 1)
            ref_unact = torch.cat([dn.boxes_unact.to(ref_unact.dtype), ref_unact], 1)

        boxes, logits = self.decoder(
            content,
            ref_unact,
            memory,
            shapes,
            self.dec_bbox_head,
            self.dec_score_head,
            self.query_pos_head,
            attn_mask=dn.attn_mask if dn is not None else None,
        )
        if dn is not None:
            dn_boxes, boxes = torch.split(boxes, dn.meta["dn_num_split"], dim=2)
            dn_logits, logits = torch.split(logits, dn.meta["dn_num_split"], dim=2)

        out: dict = {"pred_logits": logits[-1], "pred_boxes": boxes[-1]}
        if self.training:
            out["aux_outputs"] = [
                {"pred_logits": lg, "pred_boxes": bx} for lg, bx in zip(logits[:-1], boxes[:-1])
            ]
            out["enc_aux_outputs"] = [
                {"pred_logits": topk_logits, "pred_boxes": torch.sigmoid(topk_coords)}
            ]
            if dn is not None:
                out["dn_aux_outputs"] = [
                    {"pred_logits": lg, "pred_boxes": bx} for lg, bx in zip(dn_logits, dn_boxes)
                ]
                out["dn_meta"] = dn.meta
        return out
