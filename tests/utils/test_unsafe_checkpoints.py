"""A crafted pickle that would run code is refused by every path that loads weights, unexecuted.

The file's ``__reduce__`` creates a folder when unpickled; each loader must fail with a clear
message naming the file, and the folder must not exist afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from neo.cli import main
from tests.helpers.sigmf import write_recording


class Payload:
    """Unpickling this calls ``os.makedirs(marker)``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


@pytest.fixture
def evil(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": Payload(marker)}, path)
    # the payload works: an unsafe load runs it
    torch.load(path, weights_only=False)
    assert marker.is_dir()
    marker.rmdir()
    return path, marker


def _rtdetr_official(path):
    from neo.models.rtdetr.checkpoint import load_official_state_dict

    load_official_state_dict(nn.Linear(1, 1), path)


def _faster_rcnn_backbone(path):
    from neo.models.faster_rcnn import load_backbone_weights

    load_backbone_weights(path)


def _reid_backbone(path):
    from neo.models.reid.backbone import load_backbone_weights

    load_backbone_weights(nn.Linear(1, 1), path)


def _load_detector(path):
    from neo.inference.loading import load_detector

    load_detector(path)


def _deployed_model(path):
    from neo.deploy.runtime import load_model

    load_model(path)


def _remix_detector(path):
    from neo.remix.detector import DeployedDetector

    DeployedDetector(path)


LOADERS = {
    "pretrained_checkpoint (RT-DETR official weights)": _rtdetr_official,
    "Faster R-CNN backbone_weights": _faster_rcnn_backbone,
    "ReID backbone weights": _reid_backbone,
    "load_detector (neo rf detect, prediction tools)": _load_detector,
    "load_model (export validation, neo benchmark)": _deployed_model,
    "Remix DeployedDetector": _remix_detector,
}


@pytest.mark.parametrize("loader", LOADERS.values(), ids=LOADERS.keys())
def test_loaders_refuse_the_file_without_running_it(evil, loader):
    path, marker = evil
    with pytest.raises(ValueError, match="not a safe checkpoint") as error:
        loader(path)
    assert str(path) in str(error.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["rf", "detect", "--models", "{path}", "--input", "{recording}", "--out", "{folder}/out"],
        ["validate", "--config", "{config}", "--ckpt_path", "{path}"],
        ["export", "--config", "{config}", "--ckpt_path", "{path}", "--output", "{folder}/exp"],
        ["fit", "--config", "{reid_config}", "--ckpt_path", "{path}"],
        [
            "benchmark",
            "--model",
            "{path}",
            "--frames",
            "1",
            "--runs",
            "1",
            "--warmup",
            "0",
            "--output",
            "{folder}/bench.csv",
        ],
    ],
    ids=[
        "neo rf detect",
        "--ckpt_path (validate)",
        "neo export",
        "ReID --ckpt_path",
        "neo benchmark",
    ],
)
def test_commands_refuse_the_file_in_one_line(evil, args, capsys):
    path, marker = evil
    data = np.zeros(4096, np.complex64)
    recording = write_recording(path.parent, "rec", data, sample_rate=1e6)
    configs = Path(__file__).resolve().parents[1] / "configs"
    filled = [
        a.format(
            path=path,
            folder=path.parent,
            recording=recording,
            config=configs / "tiny_faster_rcnn.yaml",
            reid_config=configs / "tiny_reid.yaml",
        )
        for a in args
    ]
    assert main(filled) not in (0, None)
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert str(path) in err[-1] and "not a safe checkpoint" in err[-1]
    assert not marker.exists()
