"""The ``neo`` command: LightningCLI verbs plus neo's own (``neo data ...``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from lightning import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.plugins.io import CheckpointIO

from neo.callbacks.prediction_writer import CocoPredictionWriter
from neo.data.problems import DatasetError
from neo.rf.recording import RecordingError
from neo.utils.checkpoint_io import AtomicCheckpointIO

EPILOG = (
    "more verbs: `neo data {check,synth,coco,synth-rf,spectrogram} --help` (dataset tools), "
    "`neo cv --help` (k-fold cross-validation), `neo rf detect --help` (multi-model detection on "
    "SigMF recordings). Example: neo fit --config configs/demo/rtdetr.yaml"
)
USER_ERRORS: tuple[type[BaseException], ...] = (DatasetError, FileNotFoundError, RecordingError)


class NeoSaveConfig(SaveConfigCallback):
    """Saves the resolved config in the run directory and sends it to W&B when W&B logs."""

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:  # noqa: D102
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update(self.config.as_dict(), allow_val_change=True)


class NeoCLI(LightningCLI):
    """LightningCLI with neo's defaults: subclass mode, seed 0, class count linked from the data."""

    def __init__(self, args: list[str] | None = None, run: bool = True, **kwargs: Any) -> None:
        super().__init__(
            model_class=LightningModule,
            datamodule_class=LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            seed_everything_default=0,
            save_config_callback=NeoSaveConfig,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"prog": "neo", "epilog": EPILOG},
            args=args,
            run=run,
            **kwargs,
        )

    def add_arguments_to_parser(self, parser: Any) -> None:  # noqa: D102
        parser.link_arguments(
            "data.num_classes", "model.init_args.num_classes", apply_on="instantiate"
        )

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """Adds atomic, safely loaded checkpoints unless the config names its own CheckpointIO."""
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        plugins = list(config["trainer"].get("plugins") or [])
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            plugins.append(AtomicCheckpointIO())
        config["trainer"]["plugins"] = plugins
        trainer = super().instantiate_trainer(**kwargs)
        if self.subcommand == "predict" and not any(
            isinstance(c, BasePredictionWriter) for c in trainer.callbacks
        ):
            output_dir = Path(trainer.default_root_dir) / "predictions"
            trainer.callbacks.append(CocoPredictionWriter(output_dir=output_dir))
        return trainer


def main(args: list[str] | None = None) -> int:
    """Entry point of the ``neo`` console script and ``python -m neo``."""
    argv = list(sys.argv[1:] if args is None else args)
    try:
        if argv and argv[0] == "data":
            from neo.commands.data import run

            code = run(argv[1:])
        elif argv and argv[0] == "cv":
            from neo.commands.cv import run as run_cv

            code = run_cv(argv[1:])
        elif argv and argv[0] == "rf":
            from neo.commands.rf_detect import run as run_rf

            code = run_rf(argv[1:])
        else:
            NeoCLI(args=None if args is None else argv)
            code = 0
    except USER_ERRORS as e:
        if os.environ.get("NEO_TRACEBACK"):
            raise
        print(f"neo: error: {e}", file=sys.stderr)
        code = 1
    if args is None and code:
        sys.exit(code)
    return code
