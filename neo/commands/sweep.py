"""``neo sweep SWEEP.yaml --trials N``: a W&B sweep file searched with Optuna (no W&B account).

See :mod:`neo.tuning.optuna_sweep`; ``wandb sweep`` / ``wandb agent`` run the same file with W&B.
"""

from __future__ import annotations

from typing import Any

from jsonargparse import ArgumentParser


def description() -> str:
    """One line (the help of ``neo sweep``)."""
    return "search a W&B sweep file's parameters with Optuna (no W&B account needed)"


def add_verbs(parser: ArgumentParser) -> None:
    """Adds the options of :func:`neo.tuning.optuna_sweep.optuna_sweep` to ``neo sweep``."""
    from neo.tuning.optuna_sweep import optuna_sweep

    parser.add_function_arguments(optuna_sweep, as_positional=True)


def run(config: Any) -> int:
    """Runs ``neo sweep``; returns its exit code."""
    from neo.tuning.optuna_sweep import optuna_sweep

    kwargs = config.as_dict()
    kwargs.pop("__path__", None)
    return optuna_sweep(**kwargs)
