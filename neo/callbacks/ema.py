"""Exponential moving average of the weights, with the warm-up ramp of the RT-DETR recipe."""

from __future__ import annotations

import math

import torch
from lightning.pytorch.callbacks import WeightAveraging
from torch import Tensor


class EMA(WeightAveraging):
    """Lightning's weight averaging with decay ``decay · (1 − exp(−updates / warmup_steps))``.

    The ramp lets the average follow the fast early training instead of staying near the random
    initialisation; validation and the saved checkpoints use the averaged weights.

    Args:
        decay: final EMA decay.
        warmup_steps: optimizer steps over which the decay ramps up (0 disables the ramp).
        use_buffers: also average buffers such as BatchNorm statistics.
    """

    def __init__(
        self, decay: float = 0.9999, warmup_steps: int = 2000, use_buffers: bool = True
    ) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.warmup_steps = warmup_steps
        super().__init__(use_buffers=use_buffers, multi_avg_fn=self._average)

    def decay_at(self, num_updates: int) -> float:
        """Decay used for the update after ``num_updates`` earlier updates."""
        if self.warmup_steps <= 0:
            return self.decay
        return self.decay * (1.0 - math.exp(-(num_updates + 1) / self.warmup_steps))

    def _average(
        self, averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor | int
    ) -> None:
        decay = self.decay_at(int(num_averaged))
        floats = [(a, c) for a, c in zip(averaged, current) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], 1.0 - decay)
        for a, c in zip(averaged, current):
            if not a.is_floating_point():
                a.copy_(c)
