"""ResNet-vd backbone (PResNet) returning stride 8/16/32 features.

Parameter names follow the official RT-DETR ``PResNet`` so that its checkpoints and its
ImageNet-pretrained backbone files load without renaming.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops.misc import FrozenBatchNorm2d

BLOCKS_PER_STAGE: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
}
STAGE_WIDTHS = (64, 128, 256, 512)
STAGE_STRIDES = (4, 8, 16, 32)


class ConvNormLayer(nn.Module):
    """Convolution (no bias by default) followed by batch norm and an optional activation.

    Args:
        ch_in: Input channels.
        ch_out: Output channels.
        kernel_size: Square kernel size.
        stride: Convolution stride.
        padding: Padding; ``(kernel_size - 1) // 2`` when None.
        bias: Whether the convolution has a bias.
        act: Activation module applied last, identity when None.
    """

    def __init__(
        self,
        ch_in: int,
        ch_out: int,
        kernel_size: int,
        stride: int,
        padding: int | None = None,
        bias: bool = False,
        act: nn.Module | None = None,
    ) -> None:
        super().__init__()
        pad = (kernel_size - 1) // 2 if padding is None else padding
        self.conv = nn.Conv2d(ch_in, ch_out, kernel_size, stride, padding=pad, bias=bias)
        self.norm = nn.BatchNorm2d(ch_out)
        self.act = act if act is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """Apply conv, norm and activation."""
        return self.act(self.norm(self.conv(x)))


def _shortcut(ch_in: int, ch_out: int, stride: int) -> nn.Module:
    """Projection shortcut; the "vd" variant downsamples with 2x2 average pooling first."""
    if stride == 2:
        return nn.Sequential(
            OrderedDict(
                [
                    ("pool", nn.AvgPool2d(2, 2, 0, ceil_mode=True)),
                    ("conv", ConvNormLayer(ch_in, ch_out, 1, 1)),
                ]
            )
        )
    return ConvNormLayer(ch_in, ch_out, 1, stride)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34).

    Args:
        ch_in: Input channels.
        ch_out: Output channels.
        stride: Stride of the first convolution.
        identity_shortcut: Use the input as shortcut instead of a projection.
    """

    expansion = 1

    def __init__(self, ch_in: int, ch_out: int, stride: int, identity_shortcut: bool) -> None:
        super().__init__()
        self.shortcut = identity_shortcut
        if not identity_shortcut:
            self.short = _shortcut(ch_in, ch_out, stride)
        self.branch2a = ConvNormLayer(ch_in, ch_out, 3, stride, act=nn.ReLU(inplace=True))
        self.branch2b = ConvNormLayer(ch_out, ch_out, 3, 1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """Residual block forward."""
        out = self.branch2b(self.branch2a(x))
        short = x if self.shortcut else self.short(x)
        return self.act(out + short)


class BottleNeck(nn.Module):
    """1x1 - 3x3 (strided) - 1x1 bottleneck with a residual connection (ResNet-50/101).

    Args:
        ch_in: Input channels.
        ch_out: Bottleneck width; the block outputs ``4 * ch_out`` channels.
        stride: Stride of the 3x3 convolution.
        identity_shortcut: Use the input as shortcut instead of a projection.
    """

    expansion = 4

    def __init__(self, ch_in: int, ch_out: int, stride: int, identity_shortcut: bool) -> None:
        super().__init__()
        self.branch2a = ConvNormLayer(ch_in, ch_out, 1, 1, act=nn.ReLU(inplace=True))
        self.branch2b = ConvNormLayer(ch_out, ch_out, 3, stride, act=nn.ReLU(inplace=True))
        self.branch2c = ConvNormLayer(ch_out, ch_out * self.expansion, 1, 1)
        self.shortcut = identity_shortcut
        if not identity_shortcut:
            self.short = _shortcut(ch_in, ch_out * self.expansion, stride)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """Residual block forward."""
        out = self.branch2c(self.branch2b(self.branch2a(x)))
        short = x if self.shortcut else self.short(x)
        return self.act(out + short)


class Blocks(nn.Module):
    """One ResNet stage.

    Args:
        block: ``BasicBlock`` or ``BottleNeck``.
        ch_in: Input channels.
        ch_out: Stage width (before block expansion).
        count: Number of blocks.
        stride: Stride of the first block.
    """

    def __init__(
        self, block: type[BasicBlock | BottleNeck], ch_in: int, ch_out: int, count: int, stride: int
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        for i in range(count):
            self.blocks.append(
                block(ch_in, ch_out, stride=stride if i == 0 else 1, identity_shortcut=i > 0)
            )
            ch_in = ch_out * block.expansion

    def forward(self, x: Tensor) -> Tensor:
        """Run the blocks in order."""
        for block in self.blocks:
            x = block(x)
        return x


def freeze_batch_norm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` in ``module`` by a ``FrozenBatchNorm2d`` with its statistics.

    Args:
        module: Module to convert in place (a bare ``BatchNorm2d`` is returned converted).

    Returns:
        The converted module.
    """
    if isinstance(module, nn.BatchNorm2d):
        frozen = FrozenBatchNorm2d(module.num_features, eps=module.eps)
        with torch.no_grad():
            frozen.weight.copy_(module.weight)
            frozen.bias.copy_(module.bias)
            frozen.running_mean.copy_(module.running_mean)
            frozen.running_var.copy_(module.running_var)
        return frozen
    for name, child in module.named_children():
        new_child = freeze_batch_norm(child)
        if new_child is not child:
            setattr(module, name, new_child)
    return module


class PResNet(nn.Module):
    """ResNet-vd: three-conv stem, max-pool, four stages; returns the selected stage outputs.

    Args:
        depth: 18, 34, 50 or 101.
        return_idx: Stages to return (0..3 are strides 4, 8, 16, 32).
        freeze_at: Freeze the stem parameters and the first ``freeze_at`` stages; -1 freezes
            nothing.
        freeze_norm: Replace all batch norms by frozen batch norms.
    """

    def __init__(
        self,
        depth: int,
        return_idx: tuple[int, ...] = (1, 2, 3),
        freeze_at: int = -1,
        freeze_norm: bool = False,
    ) -> None:
        super().__init__()
        if depth not in BLOCKS_PER_STAGE:
            raise ValueError(
                f"PResNet depth must be one of {sorted(BLOCKS_PER_STAGE)}, got {depth}"
            )
        stem = [(3, 32, 2, "conv1_1"), (32, 32, 1, "conv1_2"), (32, 64, 1, "conv1_3")]
        self.conv1 = nn.Sequential(
            OrderedDict(
                (name, ConvNormLayer(cin, cout, 3, s, act=nn.ReLU(inplace=True)))
                for cin, cout, s, name in stem
            )
        )
        block = BottleNeck if depth >= 50 else BasicBlock
        ch_in = 64
        self.res_layers = nn.ModuleList()
        for i, count in enumerate(BLOCKS_PER_STAGE[depth]):
            stride = 1 if i == 0 else 2
            self.res_layers.append(Blocks(block, ch_in, STAGE_WIDTHS[i], count, stride))
            ch_in = STAGE_WIDTHS[i] * block.expansion
        self.return_idx = tuple(return_idx)
        self.out_channels = [STAGE_WIDTHS[i] * block.expansion for i in self.return_idx]
        self.out_strides = [STAGE_STRIDES[i] for i in self.return_idx]

        if freeze_at >= 0:
            for module in [self.conv1, *self.res_layers[: min(freeze_at, 4)]]:
                for p in module.parameters():
                    p.requires_grad_(False)
        if freeze_norm:
            freeze_batch_norm(self)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Return the feature maps of the stages in ``return_idx``."""
        x = F.max_pool2d(self.conv1(x), kernel_size=3, stride=2, padding=1)
        outs = []
        for idx, stage in enumerate(self.res_layers):
            x = stage(x)
            if idx in self.return_idx:
                outs.append(x)
        return outs
