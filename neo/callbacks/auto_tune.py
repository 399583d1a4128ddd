"""Training settings from the amount of labelled data (:func:`neo.tuning.auto_tune`) at fit."""

from __future__ import annotations

from typing import Literal

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.utilities import rank_zero_info

Setting = Literal["epochs", "batch_size", "learning_rate", "early_stop_patience"]
SETTINGS: tuple[str, ...] = ("epochs", "batch_size", "learning_rate", "early_stop_patience")


class AutoTune(Callback):
    """Sets epochs, batch size, learning rate and early-stop patience from the training data.

    At the start of ``fit`` (after the data module's ``setup``) it reads the data module's
    ``tuning``: the auto-tune table's row for its labelled images, looked up once by the data
    module (:attr:`neo.data.base.DetectionDataModule.tuning`; a spectrogram data module counts the
    labelled images outside its test split, so the fold count and the training settings come from
    the same row). It applies:

    - ``epochs``: ``trainer.fit_loop.max_epochs``;
    - ``batch_size``: ``datamodule.batch_size`` (and ``eval_batch_size``);
    - ``learning_rate``: ``model.lr`` (read by ``configure_optimizers``, which runs later);
    - ``early_stop_patience``: ``patience`` of every :class:`EarlyStopping` callback; when there is
      none, one monitoring ``monitor`` is added.

    Explicit values win: a setting named in ``keep`` is left as the config has it (e.g.
    ``keep: [batch_size]`` when the GPU only fits a certain batch). The chosen values and the
    table's time estimate are printed.

    Args:
        keep: settings to leave unchanged (any of ``epochs``, ``batch_size``, ``learning_rate``,
            ``early_stop_patience``).
        monitor: metric of the EarlyStopping callback added when the trainer has none.
        mode: ``max`` or ``min`` for that metric.
    """

    def __init__(
        self,
        keep: list[Setting] = [],  # noqa: B006
        monitor: str = "val/F1",
        mode: str = "max",
    ) -> None:
        unknown = sorted(set(keep) - set(SETTINGS))
        if unknown:
            raise ValueError(f"AutoTune keep: unknown settings {unknown}; choose from {SETTINGS}")
        self.keep = set(keep)
        self.monitor = monitor
        self.mode = mode
        self.applied: dict[str, object] = {}

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Applies the table's values before the loaders and the optimizer are built."""
        if stage != "fit":
            return
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "tuning"):
            raise ValueError("AutoTune needs a data module with tuning (a DetectionDataModule)")
        tuned = datamodule.tuning
        applied: dict[str, object] = {}
        if "epochs" not in self.keep:
            trainer.fit_loop.max_epochs = tuned["epochs"]
            applied["epochs"] = tuned["epochs"]
        if "batch_size" not in self.keep:
            datamodule.batch_size = tuned["batch_size"]
            datamodule.eval_batch_size = tuned["batch_size"]
            applied["batch_size"] = tuned["batch_size"]
        if "learning_rate" not in self.keep:
            pl_module.lr = tuned["learning_rate"]
            applied["learning_rate"] = tuned["learning_rate"]
        if "early_stop_patience" not in self.keep:
            stoppers = [c for c in trainer.callbacks if isinstance(c, EarlyStopping)]
            if not stoppers:
                stopper = EarlyStopping(monitor=self.monitor, mode=self.mode)
                trainer.callbacks.append(stopper)
                stoppers = [stopper]
            for stopper in stoppers:
                stopper.patience = tuned["early_stop_patience"]
            applied["early_stop_patience"] = tuned["early_stop_patience"]
        self.applied = applied
        kept = {
            "epochs": trainer.fit_loop.max_epochs,
            "batch_size": datamodule.batch_size,
            "learning_rate": getattr(pl_module, "lr", None),
        }
        chosen = ", ".join(f"{k}={v}" for k, v in applied.items()) or "nothing"
        explicit = ", ".join(f"{k}={kept.get(k, 'as configured')}" for k in sorted(self.keep))
        epochs = trainer.fit_loop.max_epochs
        estimate = tuned["estimated_time_min"]
        if epochs is not None and epochs > 0:
            estimate *= epochs / tuned["epochs"]
        count = tuned["num_labeled_samples"]
        rank_zero_info(
            f"auto-tune: {count} labelled images, {pl_module.num_classes} classes -> "
            f"{chosen}{f' (kept: {explicit})' if explicit else ''}; table suggests "
            f"{tuned['k_folds']} folds; estimated time {estimate:.1f} min per run"
        )
