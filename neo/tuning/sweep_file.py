"""W&B sweep files (``experiments/sweeps/*.yaml``): read once, shared by ``wandb agent`` and Optuna.

A sweep names a search ``method`` (grid, random, bayes), a ``metric`` with its ``goal``, the
``parameters`` (dotted neo options with ``values``, ``value`` or a distribution between ``min`` and
``max``) and the ``command`` each run executes, where ``${args}`` becomes ``--key=value`` options.
:func:`run_arguments` builds a run's ``neo`` arguments exactly as ``wandb agent`` does (W&B's own
``create_sweep_command_args``), so ``neo sweep`` (Optuna) launches the runs W&B would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

METHODS = ("grid", "random", "bayes")
GOALS = ("maximize", "minimize")
# W&B distributions neo can search without W&B; min/max are the values (log_uniform: exponents)
DISTRIBUTIONS = (
    "categorical",
    "constant",
    "int_uniform",
    "uniform",
    "log_uniform_values",
    "log_uniform",
    "q_uniform",
)
ARGS = "${args}"


class SweepError(ValueError):
    """A sweep file neo cannot run; the message names the file and the problem."""


@dataclass(frozen=True)
class Parameter:
    """One searched option: a list of ``choices``, or a range ``low``..``high``.

    ``kind`` is ``choice`` (``choices`` holds the values), ``int``, ``float`` or ``log`` (a float
    sampled uniformly in log space); ``step`` quantises a range (W&B's ``q``).
    """

    name: str
    kind: str
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    step: float | None = None


@dataclass(frozen=True)
class SweepFile:
    """A parsed W&B sweep file."""

    path: Path
    name: str
    method: str
    metric: str
    goal: str
    parameters: tuple[Parameter, ...]
    command: tuple[str, ...]
    early_terminate: dict[str, Any] = field(default_factory=dict)

    @property
    def grid_size(self) -> int:
        """How many runs a grid search makes (every parameter must be a list of choices)."""
        return math.prod(len(p.choices) for p in self.parameters)


def read_sweep(path: Path) -> SweepFile:
    """Reads and checks a W&B sweep file.

    Args:
        path: the sweep's YAML file.

    Returns:
        The sweep.

    Raises:
        SweepError: the file is missing, not YAML, or not a sweep neo can run.
    """
    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text())
    except OSError as e:
        raise SweepError(f"{path}: cannot read the sweep file ({e.strerror or e})") from e
    except yaml.YAMLError as e:
        raise SweepError(f"{path}: not YAML ({' '.join(str(e).split())})") from e
    if not isinstance(content, dict):
        raise SweepError(f"{path}: a sweep file is a mapping with method, metric, parameters")
    method = content.get("method")
    if method not in METHODS:
        raise SweepError(f"{path}: method {method!r} is not one of {', '.join(METHODS)}")
    metric = content.get("metric") or {}
    if not isinstance(metric, dict) or not metric.get("name"):
        raise SweepError(f"{path}: metric.name is missing")
    goal = metric.get("goal", "minimize")
    if goal not in GOALS:
        raise SweepError(f"{path}: metric.goal {goal!r} is not one of {', '.join(GOALS)}")
    raw = content.get("parameters")
    if not isinstance(raw, dict) or not raw:
        raise SweepError(f"{path}: parameters is missing or empty")
    parameters = tuple(_parameter(path, name, spec) for name, spec in raw.items())
    command = content.get("command")
    if not isinstance(command, list) or "neo" not in command or ARGS not in command:
        raise SweepError(f"{path}: command must run neo and pass {ARGS}")
    if method == "grid" and any(p.kind != "choice" for p in parameters):
        ranged = next(p.name for p in parameters if p.kind != "choice")
        raise SweepError(f"{path}: a grid sweep needs values for every parameter ({ranged})")
    return SweepFile(
        path=path,
        name=str(content.get("name") or path.stem),
        method=method,
        metric=str(metric["name"]),
        goal=goal,
        parameters=parameters,
        command=tuple(str(part) for part in command),
        early_terminate=dict(content.get("early_terminate") or {}),
    )


def _parameter(path: Path, name: str, spec: Any) -> Parameter:
    where = f"{path}: parameter {name}"
    if not isinstance(spec, dict):
        raise SweepError(f"{where}: expected a mapping with values, value or min/max")
    if "value" in spec:
        return Parameter(name, "choice", (spec["value"],))
    if "values" in spec:
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise SweepError(f"{where}: values must be a non-empty list")
        return Parameter(name, "choice", tuple(values))
    if "min" not in spec or "max" not in spec:
        raise SweepError(f"{where}: expected values, value or min and max")
    low, high = spec["min"], spec["max"]
    both_int = isinstance(low, int) and isinstance(high, int)
    distribution = spec.get("distribution", "int_uniform" if both_int else "uniform")
    if distribution not in DISTRIBUTIONS or distribution in ("categorical", "constant"):
        raise SweepError(f"{where}: distribution {distribution!r} is not supported by neo sweep")
    if not low < high:
        raise SweepError(f"{where}: min {low} is not below max {high}")
    step = spec.get("q") if distribution == "q_uniform" else None
    if distribution == "int_uniform":
        return Parameter(name, "int", low=int(low), high=int(high))
    if distribution in ("uniform", "q_uniform"):
        return Parameter(name, "float", low=float(low), high=float(high), step=step)
    if distribution == "log_uniform":  # W&B: min and max are natural-log exponents
        return Parameter(name, "log", low=math.exp(low), high=math.exp(high))
    if low <= 0:
        raise SweepError(f"{where}: a log distribution needs min > 0")
    return Parameter(name, "log", low=float(low), high=float(high))


def run_arguments(sweep: SweepFile | dict[str, Any], values: dict[str, Any]) -> list[str]:
    """The arguments after ``neo`` of one run with the sampled ``values``, as W&B builds them.

    Args:
        sweep: the sweep (or a sweep file's raw mapping, with its ``command``).
        values: the sampled value of each parameter, by dotted name.

    Returns:
        E.g. ``["fit", "--config", "configs/reid.yaml", "--model.init_args.lr=0.0007"]``.
    """
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    command = sweep.command if isinstance(sweep, SweepFile) else sweep["command"]
    options = create_sweep_command_args({"args": {k: {"value": v} for k, v in values.items()}})
    arguments: list[str] = []
    for part in command:
        if part == ARGS:
            arguments += options["args"]
        elif part not in ("${env}", "${interpreter}", "${program}"):
            arguments.append(part)
    return arguments[arguments.index("neo") + 1 :]
