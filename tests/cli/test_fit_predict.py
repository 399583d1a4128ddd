"""End to end through the CLI: fit, resume, validate, predict, data check."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from neo.cli import main

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "tiny_faster_rcnn.yaml")


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    (metrics,) = run_dir.rglob("metrics.csv")
    with open(metrics) as f:
        return list(csv.DictReader(f))


def last_value(rows: list[dict[str, str]], key: str) -> float:
    return [float(r[key]) for r in rows if r.get(key)][-1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("fit")
    main(
        [
            "fit",
            "--config",
            CONFIG,
            "--trainer.default_root_dir",
            str(run),
            "--trainer.logger.init_args.save_dir",
            str(run),
        ]
    )
    return run


def test_fit_logs_ap_saves_checkpoints_config_and_pictures(trained):
    rows = read_metrics(trained)
    ap = last_value(rows, "val/AP")
    assert 0.0 <= ap <= 1.0
    assert list(trained.rglob("last.ckpt")) and list(trained.rglob("epoch=*.ckpt"))
    assert list(trained.rglob("config.yaml"))
    assert list(trained.rglob("visualizations/epoch_000/*.jpg"))
    (provenance,) = trained.rglob("provenance.json")
    recorded = json.loads(provenance.read_text())
    assert recorded["data_files"] == 2  # the train and val annotation files
    assert len(recorded["data_fingerprint"]) == 16


def test_checkpoint_loads_weights_only_and_keeps_classes(trained):
    (ckpt,) = trained.rglob("last.ckpt")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["neo_inference_spec"]["category_ids"] == [1, 3, 7]
    assert not list(ckpt.parent.glob("*.tmp"))


def with_checkpoint(verb: str, ckpt: Path, folder: Path, *options: str) -> int:
    """``neo <verb>`` of the tiny config from ``ckpt``, logging under ``folder``."""
    return main(
        [verb, "--config", CONFIG, "--ckpt_path", str(ckpt), *options,
         "--trainer.default_root_dir", str(folder),
         "--trainer.logger.init_args.save_dir", str(folder)]
    )  # fmt: skip


def test_resume_continues_from_checkpoint(trained, tmp_path):
    (ckpt,) = trained.rglob("last.ckpt")
    with_checkpoint("fit", ckpt, tmp_path, "--trainer.max_epochs", "2")
    state = torch.load(next(tmp_path.rglob("last.ckpt")), map_location="cpu", weights_only=True)
    assert state["epoch"] == 1 and state["global_step"] == 4


def test_predict_writes_coco_results_for_a_folder(trained, tmp_path):
    (ckpt,) = trained.rglob("last.ckpt")
    from neo.data.demo import DemoCocoDataModule

    folder = DemoCocoDataModule(
        num_train=8,
        num_val=5,
        image_height=90,
        image_width=160,
        size_range=(0.15, 0.5),
        objects_per_image=(1, 3),
    ).image_folder("val")
    out = tmp_path / "pred"
    with_checkpoint(
        "predict", ckpt, tmp_path, "--data.init_args.predict_images", str(folder),
        "--model.init_args.score_threshold", "0.0",
        "--trainer.callbacks+=neo.callbacks.CocoPredictionWriter",
        f"--trainer.callbacks.output_dir={out}", "--trainer.callbacks.render=true",
    )  # fmt: skip
    results = json.loads((out / "predictions.json").read_text())
    assert results, "expected detections (score threshold 0)"
    assert {r["category_id"] for r in results} <= {1, 3, 7}
    assert all(0 <= r["bbox"][0] <= 160 and 0 <= r["bbox"][1] <= 90 for r in results)
    assert len(list((out / "rendered").glob("*.jpg"))) == 5


def test_data_check_exit_codes(tmp_path, capsys):
    assert main(["data", "check", "--config", CONFIG]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "coco"
    (bad / "annotations").mkdir(parents=True)
    (bad / "annotations" / "instances_val2017.json").write_text("{not json")
    code = main(
        [
            "data",
            "check",
            "--data.class_path",
            "neo.data.CocoDataModule",
            "--data.init_args.root",
            str(bad),
        ]
    )
    assert code == 1
    assert "malformed JSON" in capsys.readouterr().out


def test_cli_bad_data_root_exits_nonzero_with_one_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "neo",
            "fit",
            "--config",
            CONFIG,
            "--data.class_path",
            "neo.data.CocoDataModule",
            "--data.init_args.root",
            str(tmp_path / "missing"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "neo: error:" in proc.stderr and "neo data coco" in proc.stderr


def test_predict_default_writer_uses_run_dir(trained, tmp_path):
    (ckpt,) = trained.rglob("last.ckpt")
    with_checkpoint("predict", ckpt, tmp_path)
    # the run's folder: <save_dir>/<name>/version_N/predictions/
    written = tmp_path / "tiny" / "version_0" / "predictions" / "predictions.json"
    results = json.loads(written.read_text())
    assert {r["image_id"] for r in results} <= set(range(1, 6))


def test_prediction_writer_added_on_the_command_line_writes_into_the_run(
    trained, tmp_path, monkeypatch
):
    (ckpt,) = trained.rglob("last.ckpt")
    monkeypatch.chdir(tmp_path)  # the writer used to default to ./predictions
    with_checkpoint(
        "predict", ckpt, tmp_path / "runs", "--model.init_args.score_threshold", "0.0",
        "--trainer.callbacks+=neo.callbacks.CocoPredictionWriter",
        "--trainer.callbacks.render=true",
    )  # fmt: skip
    assert not (tmp_path / "predictions").exists()
    folder = tmp_path / "runs" / "tiny" / "version_0" / "predictions"
    assert json.loads((folder / "predictions.json").read_text())
    assert len(list((folder / "rendered").glob("*.jpg"))) == 5
