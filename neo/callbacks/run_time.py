"""One line at start-up with the run's expected duration, one at the end naming the run folder."""

from __future__ import annotations

import itertools
import math
import statistics
import time
from pathlib import Path

from lightning import Callback, LightningModule, Trainer


def format_duration(seconds: float) -> str:
    """``"2 min 05 s"``, ``"1 h 03 min"`` or ``"12 s"``."""
    seconds = max(0, round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


class RunTimeEstimate(Callback):
    """Prints the fit's expected duration after its first steps, and its run folder at the end.

    The first ``warmup_batches`` batches (allocations, worker start) are not timed; the estimate
    is the median of the next ``timed_batches`` times the training batches left, plus the
    validations still to come at the speed of the sanity check (when one ran). Only the global
    rank zero prints.

    Args:
        warmup_batches: batches left out of the timing.
        timed_batches: batches timed.
    """

    def __init__(self, warmup_batches: int = 2, timed_batches: int = 4) -> None:
        self.warmup_batches = warmup_batches
        self.timed_batches = timed_batches
        self._fit_start = 0.0
        self._batch_ends: list[float] = []
        self._sanity_start = 0.0
        self._seconds_per_val_batch: float | None = None
        self._printed = False

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        self._fit_start = time.perf_counter()
        self._batch_ends, self._printed = [], False

    def on_sanity_check_start(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        self._sanity_start = time.perf_counter()

    def on_sanity_check_end(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        batches = sum(trainer.num_sanity_val_batches)
        if batches:
            self._seconds_per_val_batch = (time.perf_counter() - self._sanity_start) / batches

    def on_train_batch_end(self, trainer: Trainer, *args: object) -> None:  # noqa: D102
        if self._printed:
            return
        self._batch_ends.append(time.perf_counter())
        if len(self._batch_ends) >= self.warmup_batches + self.timed_batches:
            self._report(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        if not self._printed and len(self._batch_ends) >= 2:
            self._report(trainer)  # epochs shorter than warm-up plus timing

    def _report(self, trainer: Trainer) -> None:
        self._printed = True
        ends = self._batch_ends[-(self.timed_batches + 1) :]
        per_batch = statistics.median(b - a for a, b in itertools.pairwise(ends))
        per_epoch = trainer.num_training_batches
        if trainer.max_epochs is None or trainer.max_epochs < 0 or not math.isfinite(per_epoch):
            return  # an open-ended run has no duration to estimate
        total = per_epoch * trainer.max_epochs
        if trainer.max_steps > 0:
            total = min(total, trainer.max_steps * trainer.accumulate_grad_batches)
        done = (
            trainer.current_epoch * per_epoch
            + trainer.fit_loop.epoch_loop.batch_progress.current.ready
        )
        seconds = (total - done) * per_batch
        detail = f"{total - done} training batches at {per_batch:.2f} s"
        if self._seconds_per_val_batch is not None and trainer.check_val_every_n_epoch:
            validations = trainer.max_epochs // trainer.check_val_every_n_epoch
            val_batches = sum(trainer.num_val_batches) if trainer.num_val_batches else 0
            if math.isfinite(val_batches) and val_batches:
                seconds += validations * val_batches * self._seconds_per_val_batch
                detail += f", {validations} validations of {val_batches} batches"
        if trainer.is_global_zero:
            print(f"neo: about {format_duration(seconds)} of training left ({detail})", flush=True)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        folder = trainer.log_dir  # a broadcast under DDP: every rank asks
        if trainer.is_global_zero:
            took = format_duration(time.perf_counter() - self._fit_start)
            line = f"neo: fit took {took}; run folder {folder}"
            checkpoints = getattr(trainer.checkpoint_callback, "dirpath", None)
            if checkpoints and folder and Path(checkpoints) != Path(folder) / "checkpoints":
                line += f"; checkpoints in {checkpoints}"  # e.g. W&B: <project>/<run id>
            print(line, flush=True)
