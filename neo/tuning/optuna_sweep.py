"""``neo sweep``: a W&B sweep file searched with Optuna, for users without a W&B account.

The search space, the metric and each run's command come from the same sweep file ``wandb agent``
runs (:mod:`neo.tuning.sweep_file`); grid, random and bayes map to Optuna's grid, random and TPE
samplers, and ``early_terminate: hyperband`` to Optuna's Hyperband pruner fed by the metric after
every validation. Trials run one after another in this process through :class:`neo.cli.NeoCLI`;
their objective is the metric's last logged value, as in W&B's run summary.

The study lives in an SQLite file: running the same command again continues it, several
``neo sweep`` processes given the same ``--storage`` share it (one per GPU, like W&B agents), and a
trial whose process was killed is marked failed and run again once, by Optuna's heartbeat.
"""

from __future__ import annotations

import gc
import json
import os
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any
from unittest import mock

from neo.tuning.sweep_file import Parameter, SweepError, SweepFile, read_sweep, run_arguments

HEARTBEAT_SECONDS = 60
MAX_CONSECUTIVE_FAILURES = 3
WANDB_MODES = ("online", "offline", "disabled")


class TrialFailed(RuntimeError):
    """A trial's run raised; the trial is recorded as failed and the search continues."""


def suggest(trial: Any, parameter: Parameter) -> Any:
    """The trial's value of one parameter (list and dict choices travel as JSON strings)."""
    if parameter.kind == "choice":
        by_encoding = {_encode(v): v for v in parameter.choices}
        return by_encoding[trial.suggest_categorical(parameter.name, list(by_encoding))]
    if parameter.kind == "int":
        return trial.suggest_int(parameter.name, int(parameter.low), int(parameter.high))
    return trial.suggest_float(
        parameter.name,
        parameter.low,
        parameter.high,
        log=parameter.kind == "log",
        step=parameter.step,
    )


def _encode(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def sampler_and_pruner(sweep: SweepFile, seed: int) -> tuple[Any, Any]:
    """Optuna's sampler for the sweep's method and its pruner for ``early_terminate``."""
    import optuna

    sampler = make_sampler(sweep, seed)
    stop = sweep.early_terminate
    if not stop:
        return sampler, optuna.pruners.NopPruner()
    if stop.get("type") != "hyperband":
        raise SweepError(
            f"{sweep.path}: early_terminate type {stop.get('type')!r} is not hyperband"
        )
    pruner = optuna.pruners.HyperbandPruner(
        min_resource=int(stop.get("min_iter", 1)),
        max_resource=int(stop["max_iter"]) if "max_iter" in stop else "auto",
        reduction_factor=int(stop.get("eta", 3)),
    )
    return sampler, pruner


def make_sampler(sweep: SweepFile, seed: int) -> Any:
    """Optuna's grid, random or TPE sampler for the sweep's method."""
    import optuna

    if sweep.method == "grid":
        space = {p.name: [_encode(v) for v in p.choices] for p in sweep.parameters}
        return optuna.samplers.GridSampler(space, seed=seed)
    if sweep.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def trial_seed(seed: int, trial_number: int) -> int:
    """The sampler seed of one trial: a continued study or a second process draws new points."""
    import numpy as np

    return int(np.random.SeedSequence([seed, trial_number]).generate_state(1)[0])


def open_study(sweep: SweepFile, storage: str | None, study_name: str | None, seed: int) -> Any:
    """The sweep's study in its SQLite file, created or continued."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    if storage is None:
        folder = Path("runs") / "sweeps"
        folder.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{folder / sweep.name}.db"
    sampler, pruner = sampler_and_pruner(sweep, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        backend = RDBStorage(
            storage,
            heartbeat_interval=HEARTBEAT_SECONDS,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
        )
    direction = "maximize" if sweep.goal == "maximize" else "minimize"
    try:
        return optuna.create_study(
            storage=backend,
            study_name=study_name or sweep.name,
            sampler=sampler,
            pruner=pruner,
            direction=direction,
            load_if_exists=True,
        )
    except ValueError as e:  # e.g. an existing study with the other direction
        raise SweepError(f"{sweep.path}: study {study_name or sweep.name}: {e}") from e


def fit_trial(arguments: list[str], metric: str, trial: Any, pruning: bool) -> float:
    """Runs one ``neo fit`` in this process and returns the metric's last logged value."""
    from neo.cli import NeoCLI

    callbacks = []
    if pruning:
        from optuna_integration import PyTorchLightningPruningCallback

        callbacks.append(PyTorchLightningPruningCallback(trial, monitor=metric))
    cli = None
    try:
        try:
            # LightningCLI warns when it gets arguments while the process has its own
            with mock.patch.object(sys, "argv", sys.argv[:1]):
                cli = NeoCLI(args=arguments, trainer_defaults={"callbacks": callbacks})
        except SystemExit as e:
            raise SweepError(f"the run's options do not parse (exit {e.code}; see above)") from e
        for callback in callbacks:
            callback.check_pruned()
        trainer = cli.trainer
        if trainer.interrupted:  # Lightning ends a fit quietly on Ctrl-C; the sweep stops too
            raise KeyboardInterrupt
        value = trainer.callback_metrics.get(metric)
        if value is None:
            logged = ", ".join(sorted(trainer.callback_metrics)) or "nothing"
            raise SweepError(f"the run logged no {metric} (logged: {logged})")
        trial.set_user_attr("log_dir", str(trainer.log_dir))
        checkpoint = getattr(trainer.checkpoint_callback, "best_model_path", "")
        if checkpoint:
            trial.set_user_attr("best_checkpoint", checkpoint)
        return float(value)
    finally:
        del cli
        _finish_wandb_run()
        gc.collect()
        _empty_cuda_cache()


def _finish_wandb_run() -> None:
    """Closes a trial's W&B run; the next trial's WandbLogger would otherwise reuse it."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


def _empty_cuda_cache() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def optuna_sweep(
    sweep: Path,
    trials: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    seed: int = 0,
    wandb_mode: str | None = None,
) -> int:
    """Search a W&B sweep file's parameters with Optuna, running each trial's neo fit here.

    Args:
        sweep: the W&B sweep file (``experiments/sweeps/*.yaml``).
        trials: trials this process runs (``wandb agent --count``); default: the rest of a grid
            (random and bayes sweeps need a number).
        storage: Optuna storage URL shared by every process of the sweep; default
            ``sqlite:///runs/sweeps/<sweep name>.db``. Running again continues the study.
        study_name: the study's name in the storage; default: the sweep's ``name``.
        seed: seed of the sampler (each run's own seed comes from its config).
        wandb_mode: W&B mode of the runs' WandbLogger (online, offline, disabled); default:
            ``$WANDB_MODE``, else offline, which needs no account.

    Returns:
        0, or 1 when the sweep stopped after consecutive failed trials.
    """
    import optuna

    parsed = read_sweep(Path(sweep))
    if trials is None and parsed.method != "grid":
        raise SweepError(f"{parsed.path}: a {parsed.method} sweep needs --trials")
    verb = run_arguments(parsed, {})[0]
    if verb != "fit":
        raise SweepError(f"{parsed.path}: neo sweep runs fit commands, not {verb}")
    if trials is not None and trials < 1:
        raise SweepError(f"--trials {trials}: must be at least 1")
    mode = wandb_mode or os.environ.get("WANDB_MODE") or "offline"
    if mode not in WANDB_MODES:
        raise SweepError(f"--wandb_mode {mode!r}: not one of {', '.join(WANDB_MODES)}")
    os.environ["WANDB_MODE"] = mode
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # neo prints each trial's line
    study = open_study(parsed, storage, study_name, seed)
    if parsed.method == "grid":  # a point is not run again once started (as Optuna's grid does)
        started = len([t for t in study.get_trials(deepcopy=False) if t.state.name != "WAITING"])
        remaining = max(parsed.grid_size - started, 0)
        trials = remaining if trials is None else min(trials, remaining)
        if trials == 0:
            print(format_study(study, parsed.metric))
            print(f"neo: every point of the grid ({parsed.grid_size}) has run", file=sys.stderr)
            return 0
    failures = {"consecutive": 0}

    def objective(trial: optuna.Trial) -> float:
        if parsed.method != "grid":  # TPE and random keep no state but their generator
            study.sampler = make_sampler(parsed, trial_seed(seed, trial.number))
        values = {p.name: suggest(trial, p) for p in parsed.parameters}
        arguments = run_arguments(parsed, values)
        trial.set_user_attr("command", shlex.join(["neo", *arguments]))
        print(f"neo: trial {trial.number}: neo {shlex.join(arguments)}", file=sys.stderr)
        try:
            value = fit_trial(arguments, parsed.metric, trial, pruning=bool(parsed.early_terminate))
        except optuna.TrialPruned:
            failures["consecutive"] = 0
            raise
        except SweepError:
            raise
        except Exception as e:  # a failed trial is recorded and the search goes on
            failures["consecutive"] += 1
            print(f"neo: trial {trial.number} failed: {type(e).__name__}: {e}", file=sys.stderr)
            if failures["consecutive"] >= MAX_CONSECUTIVE_FAILURES:
                study.stop()
            raise TrialFailed(str(e)) from e
        failures["consecutive"] = 0
        print(f"neo: trial {trial.number}: {parsed.metric} = {value:.6g}", file=sys.stderr)
        return value

    study.optimize(objective, n_trials=trials, catch=(TrialFailed,), gc_after_trial=True)
    print(format_study(study, parsed.metric))
    if failures["consecutive"] >= MAX_CONSECUTIVE_FAILURES:
        print(
            f"neo: error: {parsed.path}: stopped after {MAX_CONSECUTIVE_FAILURES} failed trials "
            "in a row",
            file=sys.stderr,
        )
        return 1
    return 0


def format_study(study: Any, metric: str) -> str:
    """The trials as a table, then the best one and the command that repeats it."""
    from optuna.trial import TrialState

    lines = [f"{'trial':>5}  {'state':<8}  {metric:>12}  parameters"]
    for trial in study.trials:
        value = f"{trial.value:.6g}" if trial.value is not None else "-"
        params = ", ".join(f"{k.rsplit('.', 1)[-1]}={_short(v)}" for k, v in trial.params.items())
        lines.append(f"{trial.number:>5}  {trial.state.name:<8}  {value:>12}  {params}")
    if any(t.state == TrialState.COMPLETE for t in study.trials):
        best = study.best_trial
        lines.append(f"best: trial {best.number}, {metric} = {best.value:.6g}")
        lines.append(f"  {best.user_attrs.get('command', '')}")
        if best.user_attrs.get("best_checkpoint"):
            lines.append(f"  checkpoint: {best.user_attrs['best_checkpoint']}")
    return "\n".join(lines)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
