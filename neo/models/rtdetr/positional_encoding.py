"""2D sine-cosine positional embedding for row-major flattened feature maps."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def is_tracing() -> bool:
    """Whether the code runs under ``torch.export``/``torch.compile`` or the TorchScript tracer."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def sincos_position_embedding_2d(
    height: int,
    width: int,
    embed_dim: int = 256,
    temperature: float = 10000.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Build a fixed 2D sin-cos embedding for an ``height x width`` map flattened row-major.

    Token ``k = r * width + c`` (row ``r``, column ``c``) receives
    ``[sin(r·ω), cos(r·ω), sin(c·ω), cos(c·ω)]`` with ``ω_i = temperature^(-i / (embed_dim/4))``.
    For square maps this is exactly the embedding of the official RT-DETR, whose grid is built
    column-major; for non-square maps the official one scrambles positions, this one does not.

    Args:
        height: Number of rows of the feature map.
        width: Number of columns of the feature map.
        embed_dim: Embedding size, a multiple of 4.
        temperature: Frequency base.
        device: Device of the result.
        dtype: Dtype of the result (computed in float32, then cast).

    Returns:
        Tensor of shape ``(1, height * width, embed_dim)``.
    """
    if embed_dim % 4 != 0:
        raise ValueError(
            f"embed_dim must be a multiple of 4 for a 2D sin-cos embedding, got {embed_dim}"
        )
    rows, cols = torch.meshgrid(
        torch.arange(height, dtype=torch.float32, device=device),
        torch.arange(width, dtype=torch.float32, device=device),
        indexing="ij",
    )
    quarter = embed_dim // 4
    omega = torch.arange(quarter, dtype=torch.float32, device=device) / quarter
    omega = 1.0 / (temperature**omega)
    out_y = rows.flatten()[:, None] * omega[None]
    out_x = cols.flatten()[:, None] * omega[None]
    emb = torch.cat([out_y.sin(), out_y.cos(), out_x.sin(), out_x.cos()], dim=1)
    return emb[None].to(dtype)


class SinCosPositionEmbedding2D(nn.Module):
    """Module returning the 2D sin-cos embedding of a map size, cached per size/device/dtype.

    Args:
        embed_dim: Embedding size, a multiple of 4.
        temperature: Frequency base.
    """

    def __init__(self, embed_dim: int = 256, temperature: float = 10000.0) -> None:
        super().__init__()
        if embed_dim % 4 != 0:
            raise ValueError(f"embed_dim must be a multiple of 4, got {embed_dim}")
        self.embed_dim = embed_dim
        self.temperature = temperature
        self._cache: dict[tuple[int, int, torch.device, torch.dtype], Tensor] = {}

    def forward(self, height: int, width: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """Return the ``(1, height * width, embed_dim)`` embedding.

        While traced or exported the sizes stay symbolic (nothing cached), so an exported graph
        computes the embedding of whatever input size it is given.
        """
        if is_tracing():
            return sincos_position_embedding_2d(
                height, width, self.embed_dim, self.temperature, device, dtype
            )
        key = (int(height), int(width), torch.device(device), dtype)
        emb = self._cache.get(key)
        if emb is None:
            emb = sincos_position_embedding_2d(
                int(height), int(width), self.embed_dim, self.temperature, device, dtype
            )
            self._cache[key] = emb
        return emb
