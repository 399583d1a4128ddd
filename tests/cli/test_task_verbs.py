"""Every task through every model verb of the CLI: fit once, then validate, test and predict."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from neo.cli import main
from tests.helpers.spectrograms import write_dataset

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
CASES = {
    "rtdetr-coco": "tiny_rtdetr.yaml",
    "faster_rcnn-coco": "tiny_faster_rcnn.yaml",
    "faster_rcnn-spectrogram": "tiny_spectrogram.yaml",
}


def last_metrics(folder: Path) -> dict[str, float]:
    (path,) = folder.rglob("metrics.csv")
    values: dict[str, float] = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            values.update({k: float(v) for k, v in row.items() if v})
    return values


@pytest.fixture(scope="module", params=list(CASES))
def fitted(request, tmp_path_factory) -> tuple[list[str], Path]:
    """The case's base arguments and its one-epoch ``last.ckpt``-holding run folder."""
    root = tmp_path_factory.mktemp(request.param)
    base = ["--config", str(CONFIGS / CASES[request.param]), "--trainer.log_every_n_steps", "1"]
    if "spectrogram" in request.param:
        data = write_dataset(root / "data", recordings=4, chunks=2)
        base += [f"--data.init_args.roots=[{data}]", "--data.init_args.fold=0"]
    run = root / "fit"
    folders = ["--trainer.default_root_dir", str(run), "--trainer.logger.init_args.save_dir"]
    assert main(["fit", *base, *folders, str(run)]) == 0
    return base, run


def test_fit(fitted):
    _, run = fitted
    metrics = last_metrics(run)
    assert 0.0 <= metrics["val/AP"] <= 1.0 and math.isfinite(metrics["train/loss"])
    assert list(run.rglob("*.ckpt")) and list(run.rglob("config.yaml"))


@pytest.mark.parametrize("verb", ["validate", "test", "predict"])
def test_verb(fitted, verb, tmp_path):
    base, run = fitted
    ckpt = next(run.rglob("*.ckpt"))
    folders = ["--trainer.default_root_dir", str(tmp_path), "--trainer.logger.init_args.save_dir"]
    assert main([verb, *base, "--ckpt_path", str(ckpt), *folders, str(tmp_path)]) == 0
    if verb == "predict":
        (written,) = tmp_path.rglob("predictions/predictions.json")
        results = json.loads(written.read_text())
        assert isinstance(results, list)
        assert all(len(r["bbox"]) == 4 and 0.0 <= r["score"] <= 1.0 for r in results)
    else:
        stage = "val" if verb == "validate" else "test"
        metrics = last_metrics(tmp_path)
        assert 0.0 <= metrics[f"{stage}/AP"] <= 1.0
        assert 0.0 <= metrics[f"{stage}/AP50"] <= 1.0


def test_export(fitted, tmp_path):
    """``neo export`` of every task: FP32 ONNX with its sidecar and report, AP as PyTorch's."""
    base, run = fitted
    ckpt = next(run.rglob("*.ckpt"))
    out = tmp_path / "exports"
    args = ["export", *base, "--ckpt_path", str(ckpt), "--output", str(out), "--val_images", "4"]
    assert main(args) == 0
    report = json.loads((out / "export_report.json").read_text())
    (onnx_file,) = out.glob("*_fp32.onnx")
    sidecar = json.loads(onnx_file.with_suffix(".json").read_text())
    assert sidecar["format"] == "onnx" and sidecar["model_class"] == report["model_class"]
    assert sidecar["input"]["size"] == report["input_size"]
    checked = report["validation"]["files"][onnx_file.name]
    assert checked["images"] == 4
    assert abs(checked["ap_delta"]) <= 0.002
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # nothing half-written
