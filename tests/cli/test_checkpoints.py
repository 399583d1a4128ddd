"""Checkpoints through the CLI: last.ckpt per epoch, resuming, --ckpt_path precedence, errors."""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch

from neo.cli import NeoCLI, main
from neo.utils.atomic import atomic_path

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FASTER_RCNN = str(CONFIGS / "tiny_faster_rcnn.yaml")
RTDETR = str(CONFIGS / "tiny_rtdetr.yaml")


def run_args(folder: Path) -> list[str]:
    return [
        "--trainer.default_root_dir", str(folder),
        "--trainer.logger.init_args.save_dir", str(folder),
    ]  # fmt: skip


def epochs_logged(metrics: Path) -> list[int]:
    with open(metrics) as f:
        return sorted({int(r["epoch"]) for r in csv.DictReader(f) if r.get("val/AP")})


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """Two epochs that never improve val/AP (lr 0), files written under umask 002."""
    folder = tmp_path_factory.mktemp("run")
    old = os.umask(0o002)
    try:
        code = main(
            ["fit", "--config", FASTER_RCNN, "--trainer.max_epochs", "2",
             "--model.init_args.lr", "0", "--model.init_args.detections_per_image", "50",
             *run_args(folder)]
        )  # fmt: skip
    finally:
        os.umask(old)
    assert code == 0
    return folder / "tiny" / "version_0"


def test_last_checkpoint_holds_the_end_of_every_epoch(run):
    with open(run / "metrics.csv") as f:
        aps = [float(r["val/AP"]) for r in csv.DictReader(f) if r.get("val/AP")]
    assert len(aps) == 2 and aps[1] <= aps[0]  # epoch 1 did not improve: no new best checkpoint
    assert sorted(p.name for p in (run / "checkpoints").glob("*.ckpt")) == [
        "epoch=0-step=2.ckpt",
        "last.ckpt",
    ]
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert (state["epoch"], state["global_step"]) == (1, 4)


def test_files_respect_the_umask(run):
    for path in (run / "checkpoints").glob("*.ckpt"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o664, path


def test_ckpt_path_last_resumes_the_latest_run_in_its_folder(run, tmp_path, capsys):
    copy = tmp_path / "tiny" / "version_0"
    shutil.copytree(run, copy)
    shutil.copytree(run, tmp_path / "tiny" / "version_1")
    (tmp_path / "tiny" / "version_1" / "checkpoints" / "last.ckpt").unlink()  # no last.ckpt
    stale = copy / "checkpoints" / ".last.ckpt.abc123.tmp"  # left by a save that was killed
    stale.write_bytes(b"")
    code = main(
        ["fit", "--config", FASTER_RCNN, "--trainer.max_epochs", "3",
         "--model.init_args.lr", "0", "--ckpt_path", "last", *run_args(tmp_path)]
    )  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == ["version_0", "version_1"]
    state = torch.load(copy / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert (state["epoch"], state["global_step"]) == (2, 6)
    assert epochs_logged(copy / "metrics.csv") == [2]  # resumed after epoch 1, not epoch 0
    assert epochs_logged(copy / "metrics.0.csv") == [0, 1]  # the earlier logs are kept
    assert not stale.exists()
    assert f"resuming {copy / 'checkpoints' / 'last.ckpt'}" in capsys.readouterr().err
    # other verbs take the same checkpoint but log into a new folder of their own
    args = ["validate", "--config", FASTER_RCNN, "--ckpt_path", "last", *run_args(tmp_path)]
    assert main(args) == 0
    assert epochs_logged(copy / "metrics.csv") == [2]
    assert epochs_logged(tmp_path / "tiny" / "version_2" / "metrics.csv")  # val/AP logged there


def test_ckpt_path_last_without_a_run_is_a_one_line_error(tmp_path, capsys):
    args = ["fit", "--config", FASTER_RCNN, "--ckpt_path", "last", *run_args(tmp_path)]
    assert main(args) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert line.startswith("neo: error: --ckpt_path last: no run of this config has a last.ckpt")


class Built(NeoCLI):
    """Parses and builds everything, runs nothing."""

    def _run_subcommand(self, subcommand: str) -> None:
        pass


def test_command_line_wins_over_checkpoint_which_wins_over_config(run, tmp_path, capsys):
    ckpt = str(run / "checkpoints" / "last.ckpt")
    cli = Built(
        ["validate", "--config", FASTER_RCNN, "--ckpt_path", ckpt,
         "--model.init_args.score_threshold", "0.9", *run_args(tmp_path)]
    )  # fmt: skip
    assert cli.model.hparams.score_threshold == 0.9  # the command line (checkpoint: 0.01)
    assert cli.model.hparams.detections_per_image == 50  # the checkpoint (config: 100)
    err = capsys.readouterr().err
    assert "detections_per_image=50 (config: 100)" in err
    assert "from the command line: score_threshold=0.9" in err


def test_checkpoint_of_another_model_class_is_a_one_line_error(run, tmp_path, capsys):
    ckpt = str(run / "checkpoints" / "last.ckpt")
    assert main(["validate", "--config", RTDETR, "--ckpt_path", ckpt, *run_args(tmp_path)]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == (
        f"neo: error: {ckpt}: a neo.tasks.FasterRCNNTask checkpoint, but the config's model is "
        "neo.tasks.RTDETRTask; give the config the checkpoint was trained with"
    )


class Evil:
    pass


def test_truncated_and_unsafe_checkpoints_are_one_line_errors(run, tmp_path, capsys):
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes((run / "checkpoints" / "last.ckpt").read_bytes()[:20000])
    unsafe = tmp_path / "unsafe.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "evil": Evil()}, unsafe)
    for path, message in ((truncated, "truncated or corrupt"), (unsafe, "not a safe checkpoint")):
        args = ["validate", "--config", FASTER_RCNN, "--ckpt_path", str(path), *run_args(tmp_path)]
        assert main(args) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err and "weights_only" not in err
        assert err.strip().splitlines()[-1].startswith(f"neo: error: {path}: {message}")


def test_fast_dev_run_writes_no_checkpoint_and_no_pictures(tmp_path):
    args = ["fit", "--config", FASTER_RCNN, "--trainer.fast_dev_run", "1", *run_args(tmp_path)]
    assert main(args) == 0
    assert list(tmp_path.rglob("*")) == []


def test_bad_value_found_while_building_is_one_line(tmp_path, capsys):
    args = ["fit", "--config", FASTER_RCNN, "--data.init_args.eval_size", "[200,350]"]
    assert main([*args, *run_args(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Given value" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("neo: error:") and "multiple of 32" in line


def test_configuration_error_is_short_and_last(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", FASTER_RCNN, "--trainer.max_epochz", "3"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 2 and "usage" not in "".join(err)
    assert err[-1] == "neo: error: unrecognized arguments: --trainer.max_epochz 3"


def test_a_checkpoint_needs_not_its_starting_weights(tmp_path):
    from torchvision.models import resnet18

    weights = tmp_path / "resnet18.pth"
    torch.save(resnet18().state_dict(), weights)
    started = [
        "--config", FASTER_RCNN, "--model.init_args.backbone_weights", str(weights),
        "--trainer.max_epochs", "1",
    ]  # fmt: skip
    assert main(["fit", *started, *run_args(tmp_path / "fit")]) == 0
    (ckpt,) = (tmp_path / "fit").rglob("last.ckpt")
    weights.unlink()  # the machine that evaluates has only the checkpoint
    assert main(["validate", *started, "--ckpt_path", str(ckpt), *run_args(tmp_path / "v")]) == 0


def test_checkpoint_class_comparison_imports_only_the_configs_package():
    import sys

    from neo.cli import same_class

    assert same_class("neo.tasks.rtdetr.RTDETRTask", "neo.tasks.RTDETRTask")
    assert not same_class("neo.tasks.faster_rcnn.FasterRCNNTask", "neo.tasks.RTDETRTask")
    sys.modules.pop("colorsys", None)
    assert not same_class("colorsys.Fly", "neo.tasks.RTDETRTask")
    assert "colorsys" not in sys.modules


def test_disk_full_while_writing_predictions_keeps_the_previous_file(
    run, tmp_path, capsys, monkeypatch
):
    from neo.callbacks import prediction_writer

    out = tmp_path / "predictions"
    args = [
        "predict", "--config", FASTER_RCNN, "--ckpt_path", str(run / "checkpoints" / "last.ckpt"),
        "--trainer.callbacks+=neo.callbacks.CocoPredictionWriter",
        f"--trainer.callbacks.output_dir={out}", *run_args(tmp_path),
    ]  # fmt: skip
    assert main(args) == 0
    before = (out / "predictions.json").read_bytes()

    def full_disk(path, data, indent=None):  # half the file written, then the disk is full
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(data)[: len(before) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(prediction_writer, "write_json", full_disk)
    assert main(args) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("neo: error:") and "No space left on device" in line
    assert (out / "predictions.json").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["predictions.json"]  # no temporary left
