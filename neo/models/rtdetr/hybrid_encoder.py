"""Hybrid encoder: per-level projection, AIFI on the coarsest level, CCFM (FPN + PAN) fusion."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neo.models.rtdetr.backbone import ConvNormLayer
from neo.models.rtdetr.positional_encoding import SinCosPositionEmbedding2D


class RepVggBlock(nn.Module):
    """RepVGG block: 3x3 conv-BN plus 1x1 conv-BN, summed, then activation.

    ``convert_to_deploy`` fuses both branches into one 3x3 convolution for inference.

    Args:
        ch_in: Input channels.
        ch_out: Output channels.
    """

    def __init__(self, ch_in: int, ch_out: int) -> None:
        super().__init__()
        self.ch_in, self.ch_out = ch_in, ch_out
        self.conv1 = ConvNormLayer(ch_in, ch_out, 3, 1, padding=1)
        self.conv2 = ConvNormLayer(ch_in, ch_out, 1, 1, padding=0)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the (possibly fused) block."""
        if hasattr(self, "conv"):
            return self.act(self.conv(x))
        return self.act(self.conv1(x) + self.conv2(x))

    @staticmethod
    def _fuse(branch: ConvNormLayer) -> tuple[Tensor, Tensor]:
        norm = branch.norm
        std = (norm.running_var + norm.eps).sqrt()
        scale = norm.weight / std
        return branch.conv.weight * scale.reshape(
            -1, 1, 1, 1
        ), norm.bias - norm.running_mean * scale

    @torch.no_grad()
    def convert_to_deploy(self) -> None:
        """Fuse both branches into a single 3x3 convolution ``self.conv``."""
        k3, b3 = self._fuse(self.conv1)
        k1, b1 = self._fuse(self.conv2)
        conv = nn.Conv2d(self.ch_in, self.ch_out, 3, 1, padding=1).to(k3.device, k3.dtype)
        conv.weight.copy_(k3 + F.pad(k1, [1, 1, 1, 1]))
        conv.bias.copy_(b3 + b1)
        self.conv = conv


class CSPRepLayer(nn.Module):
    """CSP layer: two 1x1 branches, one through RepVGG blocks, summed, optional 1x1 output conv.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        num_blocks: Number of RepVGG blocks.
        expansion: Hidden width as a fraction of ``out_channels``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, num_blocks: int = 3, expansion: float = 1.0
    ) -> None:
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = ConvNormLayer(in_channels, hidden, 1, 1, act=nn.SiLU(inplace=True))
        self.conv2 = ConvNormLayer(in_channels, hidden, 1, 1, act=nn.SiLU(inplace=True))
        self.bottlenecks = nn.Sequential(*[RepVggBlock(hidden, hidden) for _ in range(num_blocks)])
        if hidden != out_channels:
            self.conv3: nn.Module = ConvNormLayer(
                hidden, out_channels, 1, 1, act=nn.SiLU(inplace=True)
            )
        else:
            self.conv3 = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """CSP forward."""
        return self.conv3(self.bottlenecks(self.conv1(x)) + self.conv2(x))


class TransformerEncoderLayer(nn.Module):
    """Post-norm transformer encoder layer (self-attention + FFN) with additive positions.

    Args:
        d_model: Token width.
        nhead: Attention heads.
        dim_feedforward: FFN hidden width.
        dropout: Dropout probability.
    """

    def __init__(
        self, d_model: int, nhead: int, dim_feedforward: int = 1024, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout, batch_first=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation = nn.GELU()

    def forward(self, src: Tensor, pos_embed: Tensor | None = None) -> Tensor:
        """Encode tokens ``src`` of shape ``(B, N, d_model)``."""
        q = k = src if pos_embed is None else src + pos_embed
        attn, _ = self.self_attn(q, k, value=src, need_weights=False)
        src = self.norm1(src + self.dropout1(attn))
        ffn = self.linear2(self.dropout(self.activation(self.linear1(src))))
        return self.norm2(src + self.dropout2(ffn))


class TransformerEncoder(nn.Module):
    """Stack of encoder layers.

    Args:
        d_model: Token width.
        nhead: Attention heads.
        dim_feedforward: FFN hidden width.
        dropout: Dropout probability.
        num_layers: Number of layers.
    """

    def __init__(
        self, d_model: int, nhead: int, dim_feedforward: int, dropout: float, num_layers: int
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout)
            for _ in range(num_layers)
        )

    def forward(self, src: Tensor, pos_embed: Tensor | None = None) -> Tensor:
        """Run all layers."""
        for layer in self.layers:
            src = layer(src, pos_embed=pos_embed)
        return src


class HybridEncoder(nn.Module):
    """RT-DETR hybrid encoder.

    Args:
        in_channels: Channels of the backbone levels (fine to coarse).
        feat_strides: Strides of those levels.
        hidden_dim: Common width after projection.
        nhead: Attention heads of AIFI.
        dim_feedforward: FFN width of AIFI.
        dropout: Dropout of AIFI.
        use_encoder_idx: Levels processed by AIFI (the stride-32 level by default).
        num_encoder_layers: AIFI layers per used level.
        pe_temperature: Frequency base of the sin-cos positional embedding.
        expansion: Hidden width fraction of the CSP layers.
        depth_mult: Multiplier of the 3 RepVGG blocks per CSP layer.
    """

    def __init__(
        self,
        in_channels: Sequence[int] = (512, 1024, 2048),
        feat_strides: Sequence[int] = (8, 16, 32),
        hidden_dim: int = 256,
        nhead: int = 8,
        dim_feedforward: int = 1024,
        dropout: float = 0.0,
        use_encoder_idx: Sequence[int] = (2,),
        num_encoder_layers: int = 1,
        pe_temperature: float = 10000.0,
        expansion: float = 1.0,
        depth_mult: float = 1.0,
    ) -> None:
        super().__init__()
        self.in_channels = list(in_channels)
        self.feat_strides = list(feat_strides)
        self.hidden_dim = hidden_dim
        self.use_encoder_idx = list(use_encoder_idx)
        self.num_encoder_layers = num_encoder_layers
        self.out_channels = [hidden_dim] * len(self.in_channels)
        self.out_strides = self.feat_strides

        self.input_proj = nn.ModuleList(
            nn.Sequential(
                OrderedDict(
                    [
                        ("conv", nn.Conv2d(c, hidden_dim, kernel_size=1, bias=False)),
                        ("norm", nn.BatchNorm2d(hidden_dim)),
                    ]
                )
            )
            for c in self.in_channels
        )
        self.encoder = nn.ModuleList(
            TransformerEncoder(hidden_dim, nhead, dim_feedforward, dropout, num_encoder_layers)
            for _ in self.use_encoder_idx
        )
        self.pos_embed = SinCosPositionEmbedding2D(hidden_dim, pe_temperature)

        num_blocks = round(3 * depth_mult)
        n_fuse = len(self.in_channels) - 1
        self.lateral_convs = nn.ModuleList(
            ConvNormLayer(hidden_dim, hidden_dim, 1, 1, act=nn.SiLU(inplace=True))
            for _ in range(n_fuse)
        )
        self.fpn_blocks = nn.ModuleList(
            CSPRepLayer(2 * hidden_dim, hidden_dim, num_blocks, expansion) for _ in range(n_fuse)
        )
        self.downsample_convs = nn.ModuleList(
            ConvNormLayer(hidden_dim, hidden_dim, 3, 2, act=nn.SiLU(inplace=True))
            for _ in range(n_fuse)
        )
        self.pan_blocks = nn.ModuleList(
            CSPRepLayer(2 * hidden_dim, hidden_dim, num_blocks, expansion) for _ in range(n_fuse)
        )

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        """Fuse backbone features into ``len(in_channels)`` maps of ``hidden_dim`` channels."""
        if len(feats) != len(self.in_channels):
            raise ValueError(
                f"HybridEncoder expects {len(self.in_channels)} levels, got {len(feats)}"
            )
        proj = [layer(f) for layer, f in zip(self.input_proj, feats)]

        if self.num_encoder_layers > 0:
            for encoder, idx in zip(self.encoder, self.use_encoder_idx):
                b, c, h, w = proj[idx].shape
                tokens = proj[idx].flatten(2).permute(0, 2, 1)
                pos = self.pos_embed(h, w, tokens.device, tokens.dtype)
                memory = encoder(tokens, pos_embed=pos)
                proj[idx] = memory.permute(0, 2, 1).reshape(b, c, h, w).contiguous()

        # Top-down (FPN): inner[0] is always the current finest fused map.
        n = len(self.in_channels)
        inner = [proj[-1]]
        for k, idx in enumerate(range(n - 1, 0, -1)):
            high = self.lateral_convs[k](inner[0])
            inner[0] = high
            up = F.interpolate(high, scale_factor=2.0, mode="nearest")
            inner.insert(0, self.fpn_blocks[k](torch.cat([up, proj[idx - 1]], dim=1)))

        # Bottom-up (PAN).
        outs = [inner[0]]
        for k in range(n - 1):
            down = self.downsample_convs[k](outs[-1])
            outs.append(self.pan_blocks[k](torch.cat([down, inner[k + 1]], dim=1)))
        return outs
