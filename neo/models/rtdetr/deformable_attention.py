"""Multi-scale deformable attention (RT-DETRv2 form) in pure PyTorch with ``F.grid_sample``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def multi_scale_deformable_sample(
    value: Tensor,
    spatial_shapes: Sequence[tuple[int, int]],
    sampling_locations: Tensor,
    attention_weights: Tensor,
    num_points: Sequence[int],
) -> Tensor:
    """Sample every level bilinearly and sum the samples with attention weights.

    Args:
        value: ``(B, sum(H*W), n_heads, head_dim)`` values, levels concatenated row-major.
        spatial_shapes: ``(H, W)`` of each level.
        sampling_locations: ``(B, Q, n_heads, sum(num_points), 2)`` normalised ``(x, y)`` in
            [0, 1] (0 and 1 are the outer edges of the map).
        attention_weights: ``(B, Q, n_heads, sum(num_points))``.
        num_points: Sampling points of each level.

    Returns:
        ``(B, Q, n_heads * head_dim)``.
    """
    bs, _, n_heads, head_dim = value.shape
    _, n_query, _, total_points, _ = sampling_locations.shape
    compute_dtype = value.dtype
    if sampling_locations.dtype != value.dtype:
        # Mixed precision: sample in float32 so locations keep sub-pixel precision.
        compute_dtype = torch.float32
    value_levels = (
        value.permute(0, 2, 3, 1)
        .flatten(0, 1)
        .to(compute_dtype)
        .split([h * w for h, w in spatial_shapes], dim=-1)
    )
    grids = (2 * sampling_locations - 1).to(compute_dtype)
    grids = grids.permute(0, 2, 1, 3, 4).flatten(0, 1).split(list(num_points), dim=-2)

    samples = []
    for (h, w), value_l, grid_l in zip(spatial_shapes, value_levels, grids):
        value_l = value_l.reshape(bs * n_heads, head_dim, h, w)
        samples.append(
            F.grid_sample(
                value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False
            )
        )
    weights = attention_weights.permute(0, 2, 1, 3).reshape(bs * n_heads, 1, n_query, total_points)
    out = (torch.cat(samples, dim=-1) * weights.to(compute_dtype)).sum(-1)
    out = out.reshape(bs, n_heads * head_dim, n_query).permute(0, 2, 1)
    return out.to(attention_weights.dtype)


class MSDeformableAttention(nn.Module):
    """Multi-scale deformable cross-attention with box-relative offsets.

    Each query predicts, per head, ``num_points[l]`` offsets on level ``l``; offsets are scaled
    by ``1 / num_points[l] * box_wh * offset_scale`` around the reference box centre.

    Args:
        embed_dim: Query/value width.
        num_heads: Attention heads.
        num_levels: Feature levels.
        num_points: Sampling points per level (int for all levels or one per level).
        offset_scale: Scale of offsets relative to the reference box size.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        num_heads: int = 8,
        num_levels: int = 3,
        num_points: int | Sequence[int] = 4,
        offset_scale: float = 0.5,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        points = [num_points] * num_levels if isinstance(num_points, int) else list(num_points)
        if len(points) != num_levels:
            raise ValueError(f"num_points has {len(points)} entries for {num_levels} levels")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.num_points_list = points
        self.offset_scale = offset_scale
        self.head_dim = embed_dim // num_heads
        scale = [1.0 / n for n in points for _ in range(n)]
        self.register_buffer("num_points_scale", torch.tensor(scale, dtype=torch.float32))

        total = num_heads * sum(points)
        self.sampling_offsets = nn.Linear(embed_dim, total * 2)
        self.attention_weights = nn.Linear(embed_dim, total)
        self.value_proj = nn.Linear(embed_dim, embed_dim)
        self.output_proj = nn.Linear(embed_dim, embed_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise offsets to a ring of directions per head, growing with the point index."""
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (
            2.0 * math.pi / self.num_heads
        )
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = grid / grid.abs().max(-1, keepdim=True).values
        grid = grid.reshape(self.num_heads, 1, 2).tile([1, sum(self.num_points_list), 1])
        steps = torch.cat([torch.arange(1, n + 1) for n in self.num_points_list]).reshape(1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_((grid * steps).flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.zeros_(self.value_proj.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(
        self,
        query: Tensor,
        reference_boxes: Tensor,
        value: Tensor,
        spatial_shapes: Sequence[tuple[int, int]],
    ) -> Tensor:
        """Attend from queries to multi-scale values.

        Args:
            query: ``(B, Q, C)``.
            reference_boxes: ``(B, Q, 1, 4)`` normalised ``(cx, cy, w, h)``.
            value: ``(B, sum(H*W), C)``.
            spatial_shapes: ``(H, W)`` of each level.

        Returns:
            ``(B, Q, C)``.
        """
        bs, n_query = query.shape[:2]
        n_points = sum(self.num_points_list)
        value = self.value_proj(value).reshape(bs, value.shape[1], self.num_heads, self.head_dim)
        offsets = self.sampling_offsets(query).reshape(bs, n_query, self.num_heads, n_points, 2)
        weights = self.attention_weights(query).reshape(bs, n_query, self.num_heads, n_points)
        weights = F.softmax(weights, dim=-1)

        scale = self.num_points_scale.to(query.dtype).unsqueeze(-1)
        offset = offsets * scale * reference_boxes[:, :, None, :, 2:] * self.offset_scale
        locations = reference_boxes[:, :, None, :, :2] + offset
        out = multi_scale_deformable_sample(
            value, spatial_shapes, locations, weights, self.num_points_list
        )
        return self.output_proj(out)
