"""A callback for the resume tests: records every training step and can hold the run for a kill."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import torch
from lightning import Callback
from lightning.pytorch.callbacks import WeightAveraging


def digest(tensors: Any) -> str:
    """A hash of the bytes of ``tensors`` (a tensor or an iterable of them)."""
    if isinstance(tensors, torch.Tensor):
        tensors = [tensors]
    sha = hashlib.sha256()
    for tensor in tensors:
        sha.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()[:16]


class ResumeProbe(Callback):
    """Appends one JSON line per training step to ``steps_file``; sleeps at step ``hold_at_step``.

    Each line holds the epoch, batch and step, a hash of the batch's images (data order and
    augmentation), the learning rates, the non-finite counter and hashes of the weights and of
    the EMA weights after the step. At the end of training it saves the final weights and the
    metrics.

    Args:
        steps_file: the JSON-lines file (appended to, so a killed and a resumed run share it).
        hold_at_step: the global step at whose start the run writes ``<steps_file>.held`` and sleeps
            (for the test to kill it); negative never holds.
    """

    def __init__(self, steps_file: str, hold_at_step: int = -1) -> None:
        self.steps_file = Path(steps_file)
        self.hold_at_step = hold_at_step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.hold_at_step:
            self.steps_file.with_suffix(".held").touch()
            time.sleep(600)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        averages = [c for c in trainer.callbacks if isinstance(c, WeightAveraging)]
        line = {
            "epoch": trainer.current_epoch,
            "batch": batch_idx,
            "step": trainer.global_step,
            "data": digest(batch[0]),
            "lr": [group["lr"] for group in trainer.optimizers[0].param_groups],
            "nonfinite": getattr(pl_module, "_nonfinite_in_a_row", None),
            "weights": digest(pl_module.state_dict().values()),
            "ema": digest(averages[0]._average_model.parameters()) if averages else None,
        }
        with open(self.steps_file, "a") as f:
            f.write(json.dumps(line) + "\n")

    def on_train_end(self, trainer, pl_module) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        torch.save(
            {"state_dict": pl_module.state_dict(), "metrics": metrics},
            self.steps_file.with_suffix(".final.pt"),
        )
