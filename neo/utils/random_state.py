"""The random generators' states, stored in checkpoints so that a resumed run draws on exactly.

The data side of training is drawn from (seed, epoch, position) (:mod:`neo.data.resumable`); what
the model draws (denoising queries, proposal sampling, dropout) comes from the global generators,
whose states at the checkpoint are restored on resume. Under DDP the checkpoint holds rank zero's
states, which every rank restores.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

RANDOM_STATE_KEY = "random_state"


def capture_random_state() -> dict[str, Any]:
    """The states of Python's, NumPy's, torch's CPU and (when in use) CUDA generators.

    Only tensors, numbers and lists, so the checkpoint stays loadable with ``weights_only=True``.
    """
    version, internal, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_random_state(state: dict[str, Any]) -> None:
    """Sets the generators to a state from :func:`capture_random_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        states = state["cuda"]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)


def save_random_state(checkpoint: dict[str, Any]) -> None:
    """Stores the generators' states in a checkpoint being saved (``on_save_checkpoint``)."""
    checkpoint[RANDOM_STATE_KEY] = capture_random_state()


def resume_random_state(module: Any, checkpoint: dict[str, Any]) -> None:
    """Restores the stored states when ``module``'s trainer resumes fitting from ``checkpoint``."""
    trainer = getattr(module, "_trainer", None)
    if RANDOM_STATE_KEY in checkpoint and trainer is not None and trainer.state.fn == "fit":
        restore_random_state(checkpoint[RANDOM_STATE_KEY])
