"""Two CPU processes (DDP, gloo) through the CLI: evaluation gathers across ranks."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "tiny_faster_rcnn.yaml")


def metric(run_dir: Path, key: str) -> float:
    (metrics,) = run_dir.rglob("metrics.csv")
    with open(metrics) as f:
        return [float(r[key]) for r in csv.DictReader(f) if r.get(key)][-1]


def neo(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "neo", *args], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_ddp_fit_ap_equals_single_process_ap(tmp_path):
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    # 5 validation images on 2 ranks: the sampler repeats one image, which must be counted once.
    neo(
        "fit",
        "--config",
        CONFIG,
        "--trainer.strategy",
        "ddp",
        "--trainer.devices",
        "2",
        "--trainer.default_root_dir",
        str(ddp_dir),
        "--trainer.logger.init_args.save_dir",
        str(ddp_dir),
        "--data.init_args.eval_batch_size",
        "1",
    )
    (ckpt,) = ddp_dir.rglob("last.ckpt")
    neo(
        "validate",
        "--config",
        CONFIG,
        "--ckpt_path",
        str(ckpt),
        "--trainer.default_root_dir",
        str(single_dir),
        "--trainer.logger.init_args.save_dir",
        str(single_dir),
    )
    ddp_ap, single_ap = metric(ddp_dir, "val/AP"), metric(single_dir, "val/AP")
    assert ddp_ap == single_ap
    assert metric(ddp_dir, "val/AR100") == metric(single_dir, "val/AR100")
