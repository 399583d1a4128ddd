"""``neo sweep``: W&B sweep files searched with Optuna, trials run in-process on the tiny config."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import optuna
import pytest
import yaml

from neo.cli import main
from neo.tuning.optuna_sweep import sampler_and_pruner, suggest
from neo.tuning.sweep_file import SweepError, read_sweep, run_arguments

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "configs" / "tiny_faster_rcnn.yaml"
SHIPPED = sorted((ROOT / "experiments" / "sweeps").glob("*.yaml"))


def write_sweep(folder: Path, **fields) -> Path:
    sweep = {
        "name": "tiny",
        "method": "random",
        "metric": {"name": "val/AR100", "goal": "maximize"},
        "parameters": {"model.init_args.lr": {"values": [0.001, 0.003]}},
        "command": ["${env}", "uv", "run", "neo", "fit", "--config", str(TINY), "${args}"],
        **fields,
    }
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_MODE", "disabled")


def last_logged(log_dir: Path, metric: str) -> float:
    rows = list(csv.DictReader((log_dir / "metrics.csv").open()))
    return float([r[metric] for r in rows if r.get(metric)][-1])


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_sweep_maps_to_optuna(path):
    sweep = read_sweep(path)
    sampler, pruner = sampler_and_pruner(sweep, seed=0)
    expected = {"grid": "GridSampler", "random": "RandomSampler", "bayes": "TPESampler"}
    assert type(sampler).__name__ == expected[sweep.method]
    hyperband = sweep.early_terminate.get("type") == "hyperband"
    assert isinstance(pruner, optuna.pruners.HyperbandPruner) == hyperband
    trial = optuna.create_study(sampler=sampler).ask()
    values = {p.name: suggest(trial, p) for p in sweep.parameters}
    raw = yaml.safe_load(path.read_text())
    assert run_arguments(sweep, values) == run_arguments(raw, values)
    assert run_arguments(sweep, values)[0] == "fit"


def test_distributions_keep_their_ranges_and_list_values(tmp_path):
    path = write_sweep(
        tmp_path,
        parameters={
            "a": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-3},
            "b": {"min": 2, "max": 5},
            "c": {"distribution": "log_uniform", "min": 0, "max": 1},
            "d": {"values": [[[1088, 1920]], [[992, 1760], [1088, 1920]]]},
            "e": {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.25},
        },
    )
    sweep = read_sweep(path)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        values = {p.name: suggest(study.ask(), p) for p in sweep.parameters}
        assert 1e-5 <= values["a"] <= 1e-3
        assert isinstance(values["b"], int) and 2 <= values["b"] <= 5
        assert 1.0 <= values["c"] <= math.e
        assert values["d"] in ([[1088, 1920]], [[992, 1760], [1088, 1920]])
        assert values["e"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    arguments = run_arguments(sweep, {"d": [[1088, 1920]]})
    assert arguments[-1] == "--d=[[1088, 1920]]"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"method": "hyperopt"}, "method 'hyperopt'"),
        ({"metric": {"goal": "maximize"}}, "metric.name"),
        ({"parameters": {"x": {"distribution": "normal", "mu": 0, "sigma": 1}}}, "parameter x"),
        (
            {"parameters": {"x": {"distribution": "q_log_uniform_values", "min": 1, "max": 8}}},
            "'q_log_uniform_values' is not supported",
        ),
        ({"parameters": {"x": {"min": 3, "max": 1}}}, "min 3 is not below max 1"),
        ({"method": "grid", "parameters": {"x": {"min": 0.1, "max": 1.0}}}, "grid sweep"),
        ({"command": ["python", "train.py"]}, "command must run neo"),
    ],
)
def test_a_sweep_neo_cannot_run_is_one_line_naming_the_file(tmp_path, fields, message):
    path = write_sweep(tmp_path, **fields)
    with pytest.raises(SweepError, match=message) as caught:
        read_sweep(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_random_sweep_runs_its_trials_and_continues_where_it_stopped(tmp_path, capsys):
    lr = {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2}
    path = write_sweep(tmp_path, parameters={"model.init_args.lr": lr})
    assert main(["sweep", str(path), "--trials", "2"]) == 0
    storage = f"sqlite:///{tmp_path / 'runs' / 'sweeps' / 'tiny.db'}"
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    for trial in study.trials:
        log_dir = tmp_path / trial.user_attrs["log_dir"]
        assert trial.value == pytest.approx(last_logged(log_dir, "val/AR100"))
        lr = trial.params["model.init_args.lr"]
        config = yaml.safe_load((log_dir / "config.yaml").read_text())
        assert config["model"]["init_args"]["lr"] == lr
        assert f"--model.init_args.lr={lr}" in trial.user_attrs["command"]
    printed = capsys.readouterr().out
    assert f"best: trial {study.best_trial.number}, val/AR100" in printed

    assert main(["sweep", str(path), "--trials", "1"]) == 0
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert [t.number for t in study.trials] == [0, 1, 2]
    assert study.trials[2].state.name == "COMPLETE"
    # the continued study draws a new point, not the first call's first one again
    assert len({t.params["model.init_args.lr"] for t in study.trials}) == 3


def test_a_grid_sweep_runs_each_point_once_and_reports_to_the_pruner(tmp_path):
    path = write_sweep(
        tmp_path,
        method="grid",
        early_terminate={"type": "hyperband", "min_iter": 1},
        parameters={
            "model.init_args.lr": {"values": [0.001, 0.003]},
            "trainer.max_epochs": {"value": 2},
        },
    )
    assert main(["sweep", str(path), "--storage", "sqlite:///grid.db"]) == 0
    study = optuna.load_study(study_name="tiny", storage="sqlite:///grid.db")
    assert sorted(t.params["model.init_args.lr"] for t in study.trials) == [0.001, 0.003]
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    assert all(sorted(t.intermediate_values) == [0, 1] for t in study.trials if t.value)

    assert main(["sweep", str(path), "--storage", "sqlite:///grid.db"]) == 0
    assert len(optuna.load_study(study_name="tiny", storage="sqlite:///grid.db").trials) == 2


def test_failing_trials_are_recorded_and_stop_the_sweep_after_three(tmp_path, capsys):
    weights = {"model.init_args.backbone_weights": {"value": "missing.pth"}}
    path = write_sweep(tmp_path, parameters={"model.init_args.lr": {"values": [0.001]}, **weights})
    assert main(["sweep", str(path), "--trials", "5", "--storage", "sqlite:///f.db"]) == 1
    study = optuna.load_study(study_name="tiny", storage="sqlite:///f.db")
    assert [t.state.name for t in study.trials] == ["FAIL"] * 3
    err = capsys.readouterr().err
    assert "stopped after 3 failed trials in a row" in err
    assert "trial 0 failed" in err


def test_a_misspelt_option_stops_the_sweep_with_one_line(tmp_path, capsys):
    path = write_sweep(tmp_path, parameters={"model.init_args.lr_typo": {"values": [0.001]}})
    assert main(["sweep", str(path), "--trials", "3", "--storage", "sqlite:///t.db"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("neo: error:") and "do not parse" in err[-1]
    study = optuna.load_study(study_name="tiny", storage="sqlite:///t.db")
    assert len(study.trials) == 1


def test_random_and_bayes_sweeps_need_a_trial_count(tmp_path, capsys):
    path = write_sweep(tmp_path, method="bayes")
    assert main(["sweep", str(path)]) == 1
    assert "needs --trials" in capsys.readouterr().err


def test_a_trial_whose_process_was_killed_is_run_again(tmp_path, monkeypatch):
    import time

    from neo.tuning import optuna_sweep

    monkeypatch.setattr(optuna_sweep, "HEARTBEAT_SECONDS", 1)
    path = write_sweep(tmp_path)
    study = optuna_sweep.open_study(read_sweep(path), "sqlite:///k.db", None, seed=0)
    killed = study.ask()  # a trial left RUNNING by a process that no longer beats
    lr = suggest(killed, read_sweep(path).parameters[0])
    study._storage.record_heartbeat(killed._trial_id)
    time.sleep(3.5)  # past the grace period of two heartbeats (SQLite keeps whole seconds)

    assert main(["sweep", str(path), "--trials", "1", "--storage", "sqlite:///k.db"]) == 0
    trials = optuna.load_study(study_name="tiny", storage="sqlite:///k.db").trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert trials[1].params["model.init_args.lr"] == lr
    assert trials[1].system_attrs["failed_trial"] == trials[0].number


def test_only_fit_commands_are_searched(tmp_path, capsys):
    path = write_sweep(tmp_path, command=["neo", "cv", "--config", str(TINY), "${args}"])
    assert main(["sweep", str(path), "--trials", "1"]) == 1
    assert "runs fit commands, not cv" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
