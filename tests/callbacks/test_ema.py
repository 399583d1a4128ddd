"""EMA with the warm-up ramp."""

from __future__ import annotations

import math

import pytest
import torch

from neo.callbacks import EMA


def test_decay_ramps_up_to_final_value():
    ema = EMA(decay=0.9999, warmup_steps=2000)
    assert ema.decay_at(0) == pytest.approx(0.9999 * (1 - math.exp(-1 / 2000)))
    assert ema.decay_at(0) < ema.decay_at(1000) < ema.decay_at(20000) < 0.9999
    assert EMA(decay=0.99, warmup_steps=0).decay_at(0) == 0.99


def test_average_moves_towards_current_and_copies_integers():
    ema = EMA(decay=0.5, warmup_steps=0)
    averaged = [torch.zeros(3), torch.tensor(1)]
    current = [torch.ones(3), torch.tensor(5)]
    ema._average(averaged, current, 1)
    assert torch.allclose(averaged[0], torch.full((3,), 0.5))
    assert int(averaged[1]) == 5


def test_invalid_decay_rejected():
    with pytest.raises(ValueError, match="decay"):
        EMA(decay=1.0)
