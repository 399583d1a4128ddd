"""Two CPU processes (DDP, gloo) through the CLI for every task: evaluation gathers across ranks.

Each task fits a few steps on two ranks; the checkpoint is then validated in a single process,
and every validation metric must equal the two-process one on the same data.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from neo.cli import main
from tests.helpers.spectrograms import write_dataset

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
CASES = {
    "faster_rcnn-coco": ("tiny_faster_rcnn.yaml", ["val/AP", "val/AR100"]),
    "faster_rcnn-spectrogram": ("tiny_spectrogram.yaml", ["val/AP", "val/F1"]),
    "reid": ("tiny_reid.yaml", ["val/mAP", "val/rank1"]),
}


def metrics(run_dir: Path) -> dict[str, float]:
    (path,) = run_dir.rglob("metrics.csv")
    values: dict[str, float] = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            values.update({k: float(v) for k, v in row.items() if v and k.startswith("val/")})
    return values


@pytest.mark.parametrize("case", list(CASES))
def test_ddp_metrics_equal_single_process_metrics(case, tmp_path):
    config, keys = CASES[case]
    base = ["--config", str(CONFIGS / config)]
    if "spectrogram" in case:
        data = write_dataset(tmp_path / "data", recordings=4, chunks=2)
        base += [f"--data.init_args.roots=[{data}]", "--data.init_args.fold=0"]
    if "reid" not in case:
        # 5 validation images on 2 ranks: the sampler repeats one, which must be counted once
        base += ["--data.init_args.eval_batch_size", "1"]
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    folders = ["--trainer.default_root_dir", "--trainer.logger.init_args.save_dir"]
    proc = subprocess.run(
        [sys.executable, "-m", "neo", "fit", *base, "--trainer.max_epochs", "1",
         "--trainer.strategy", "ddp", "--trainer.devices", "2",
         folders[0], str(ddp_dir), folders[1], str(ddp_dir)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = next(ddp_dir.rglob("*.ckpt"))
    args = ["validate", *base, "--ckpt_path", str(ckpt)]
    assert main([*args, folders[0], str(single_dir), folders[1], str(single_dir)]) == 0
    ddp, single = metrics(ddp_dir), metrics(single_dir)
    assert set(keys) <= ddp.keys()
    assert ddp == single
