"""A quiet single-process CPU trainer for tests that fit tiny models in-process."""

from __future__ import annotations

from typing import Any

from lightning import Trainer


def cpu_trainer(**overrides: Any) -> Trainer:
    """A CPU trainer with no logger, checkpoints, progress bar, summary or validation."""
    settings: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "limit_val_batches": 0,
        "num_sanity_val_steps": 0,
    }
    return Trainer(**{**settings, **overrides})
