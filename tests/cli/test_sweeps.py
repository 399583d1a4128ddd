"""Every W&B sweep in experiments/sweeps launches runs the neo CLI accepts, with the sampled values.

The sweep's parameters are expanded as ``wandb agent`` expands them
(:func:`neo.tuning.sweep_file.run_arguments`, with W&B's own ``create_sweep_command_args``; ``neo
sweep`` launches the same runs), and the neo CLI parses the result
against the named config (``--print_config``): a typo in a parameter name, a value of the wrong
type or a config that does not exist fails here instead of in every run of the sweep.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from neo.tuning.sweep_file import read_sweep, run_arguments
from tests.cli.test_configs import resolve

ROOT = Path(__file__).resolve().parents[2]
SWEEPS = sorted((ROOT / "experiments" / "sweeps").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch):
    monkeypatch.setenv("NEO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.chdir(ROOT)


def candidates(spec: dict[str, Any]) -> list[Any]:
    """The values of a sweep parameter worth parsing: each listed value, or a range's ends."""
    if "values" in spec:
        return list(spec["values"])
    if "value" in spec:
        return [spec["value"]]
    low, high = spec["min"], spec["max"]
    if spec.get("distribution", "").startswith("int") or isinstance(low, int):
        return [int(low), int(high)]
    return [float(low), float(high)]


def lookup(config: dict[str, Any], dotted: str) -> Any:
    """A value of the resolved config by its dotted key; ``trainer.callbacks.K`` is the last's."""
    node: Any = config
    for key in dotted.split("."):
        if isinstance(node, list):
            node = node[-1]["init_args"]
        node = node[key]
    return node


def same(resolved: Any, sampled: Any) -> bool:
    if isinstance(sampled, float):
        return math.isclose(resolved, sampled, rel_tol=1e-9)
    if isinstance(sampled, list):
        return len(resolved) == len(sampled) and all(map(same, resolved, sampled))
    return resolved == sampled


def test_there_are_sweeps_for_each_area():
    assert {p.stem for p in SWEEPS} >= {"rtdetr", "spectrogram", "reid"}


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_runs_parse_with_the_sampled_values(path):
    read_sweep(path)  # method, metric, goal, parameters and command are valid
    sweep = yaml.safe_load(path.read_text())
    options = {k: candidates(v) for k, v in sweep["parameters"].items()}
    rounds = max(len(v) for v in options.values())
    for round_ in range(rounds):
        values = {k: v[round_ % len(v)] for k, v in options.items()}
        argv = run_arguments(sweep, values)
        verb, rest = argv[0], argv[1:]
        config = resolve(verb, rest)
        for key, value in values.items():
            assert same(lookup(config, key), value), f"{path.name}: {key} is not {value!r}"
        callbacks = config["trainer"]["callbacks"] or []
        monitors = {c.get("init_args", {}).get("monitor") for c in callbacks}
        assert sweep["metric"]["name"] in monitors, (
            f"{path.name}: metric {sweep['metric']['name']} is not monitored by the config"
        )
        assert config["trainer"]["logger"]["class_path"].endswith("WandbLogger")


def test_a_typo_in_a_parameter_name_is_caught():
    sweep = yaml.safe_load((ROOT / "experiments/sweeps/reid.yaml").read_text())
    argv = run_arguments(sweep, {"model.init_args.triplet_margn": 0.3})
    with pytest.raises(AssertionError, match="triplet_margn"):
        resolve(argv[0], argv[1:])


def test_grid_sweeps_are_small_enough_to_finish():
    for path in SWEEPS:
        sweep = read_sweep(path)
        if sweep.method == "grid":
            assert sweep.grid_size <= 50, path.name
