"""A fit killed mid-epoch and resumed ends bit-exactly where an uninterrupted fit ends.

For each task (RT-DETR on COCO with EMA and multi-scale canvases, Faster R-CNN on spectrograms
with auto-tuning, ReID) two fits start side by side from the same seed: one runs through (in this
process), the other (a subprocess) is held at a step after a mid-epoch checkpoint and SIGKILLed
there, then resumed with ``--ckpt_path last``. Every step's data (order and augmentation),
learning rates, non-finite counter, weights and EMA weights, and the final weights and metrics,
must be equal, on CPU.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import torch

from neo.cli import main
from tests.helpers.spectrograms import write_dataset

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "tests" / "configs"
PROBE = "tests.helpers.resume_probe.ResumeProbe"

AUTO_TUNE = {
    "class_path": "neo.callbacks.AutoTune",
    "init_args": {"keep": ["epochs", "batch_size"]},
}
EMA = {"class_path": "neo.callbacks.EMA", "init_args": {"decay": 0.9, "warmup_steps": 2}}


class Case(NamedTuple):
    config: str
    callbacks: list[dict]  # besides the probe and the step checkpoints
    data: dict[str, Any]  # data.init_args overrides
    batches: int  # per epoch
    every: int  # a checkpoint every n steps
    hold_at_step: int  # where the run is killed


CASES = {
    "rtdetr-coco": Case(
        "tiny_rtdetr.yaml", [EMA], {"train_sizes": [[96, 160], [128, 224]]}, 4, 3, 7
    ),
    "faster_rcnn-spectrogram": Case(
        "tiny_spectrogram.yaml",
        [{"class_path": "neo.callbacks.DetectionPRF"}, AUTO_TUNE],
        {},
        2,
        1,
        3,
    ),
    "reid": Case("tiny_reid.yaml", [], {}, 3, 2, 5),
}


def write_config(folder: Path, case: Case, log: Path, hold_at_step: int) -> Path:
    checkpoint = {
        "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
        "init_args": {"every_n_train_steps": case.every, "save_last": True},
    }
    probe = {"class_path": PROBE, "init_args": {"steps_file": str(log)}}
    probe["init_args"]["hold_at_step"] = hold_at_step
    config: dict = {
        "trainer": {
            "max_epochs": 2,
            "limit_train_batches": case.batches,
            "callbacks": [*case.callbacks, probe, checkpoint],
        },
    }
    if case.data:
        config["data"] = {"init_args": case.data}
    path = folder / "resume.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def fit_args(case: str, folder: Path, hold_at_step: int, extra: list[str]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    config = write_config(folder, CASES[case], folder / "steps.jsonl", hold_at_step)
    return [
        "fit", "--config", str(CONFIGS / CASES[case].config), "--config", str(config),
        "--trainer.default_root_dir", str(folder),
        "--trainer.logger.init_args.save_dir", str(folder), *extra,
    ]  # fmt: skip


def steps(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "steps.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("case", list(CASES))
def test_a_killed_fit_resumes_bit_exactly(case, tmp_path):
    extra: list[str] = []
    if "spectrogram" in case:
        data = write_dataset(tmp_path / "data", recordings=4, chunks=2)
        extra = [f"--data.init_args.roots=[{data}]", "--data.init_args.fold=0"]
    hold_at_step = CASES[case].hold_at_step
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    args = fit_args(case, killed, hold_at_step, extra)
    with open(tmp_path / "killed.err", "w") as err:
        held = subprocess.Popen([sys.executable, "-m", "neo", *args], cwd=ROOT, stderr=err)
    try:
        assert main(fit_args(case, whole, -1, extra)) == 0  # meanwhile, in this process
        deadline = time.monotonic() + 600
        while not (killed / "steps.held").exists():
            assert held.poll() is None, (tmp_path / "killed.err").read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        os.kill(held.pid, signal.SIGKILL)
        held.wait()
    before_kill = steps(killed)
    assert len(before_kill) == hold_at_step
    (last,) = killed.rglob("last.ckpt")
    saved_step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    assert 0 < saved_step <= hold_at_step  # later steps are lost with the kill
    assert main(fit_args(case, killed, -1, [*extra, "--ckpt_path", "last"])) == 0

    resumed = steps(killed)[len(before_kill) :]
    assert resumed[0]["step"] == saved_step + 1 and resumed[0]["batch"] > 0  # mid-epoch
    assert before_kill[:saved_step] + resumed == steps(whole)

    final_whole = torch.load(whole / "steps.final.pt", weights_only=True)
    final_resumed = torch.load(killed / "steps.final.pt", weights_only=True)
    assert final_resumed["metrics"] == final_whole["metrics"]
    assert final_whole["state_dict"].keys() == final_resumed["state_dict"].keys()
    for name, tensor in final_whole["state_dict"].items():
        assert torch.equal(final_resumed["state_dict"][name], tensor), name
