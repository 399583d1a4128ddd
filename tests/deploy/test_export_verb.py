"""``neo export`` end to end: INT8 from a video, the end-of-fit callback, and every bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from neo.cli import main
from neo.data.synth import write_video

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RTDETR = str(CONFIGS / "tiny_rtdetr.yaml")
FASTER_RCNN = str(CONFIGS / "tiny_faster_rcnn.yaml")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny RT-DETR fitted with ExportOnFitEnd (its run folder and best checkpoint)."""
    run = tmp_path_factory.mktemp("run")
    callback = [
        "--trainer.callbacks+=neo.callbacks.ExportOnFitEnd",
        "--trainer.callbacks.val_images=3",
    ]
    folders = [
        "--trainer.default_root_dir",
        str(run),
        "--trainer.logger.init_args.save_dir",
        str(run),
    ]
    assert main(["fit", "--config", RTDETR, *folders, *callback]) == 0
    (best,) = [p for p in run.rglob("*.ckpt") if p.name != "last.ckpt"]
    return run, best


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("neo: error:")]
    assert len(errors) == 1, err
    return errors[0]


def test_export_on_fit_end_exports_the_best_checkpoint(trained):
    run, best = trained
    (report_path,) = run.rglob("exports/export_report.json")
    report = json.loads(report_path.read_text())
    assert report["checkpoint"] == str(best) and report["validation"]["images"] == 3
    assert (report_path.parent / "rtdetr_96x160_fp32.onnx").is_file()


def test_int8_from_a_video_reports_fp32_and_int8_ap(trained, tmp_path):
    _, best = trained
    clip = write_video(tmp_path / "clip.mp4", 12, 90, 160, scene_frames=4)
    out = tmp_path / "exports"
    args = [
        "export",
        "--config",
        RTDETR,
        "--ckpt_path",
        str(best),
        "--precision",
        "int8",
        "--calib.video",
        str(clip),
        "--calib.num_frames",
        "8",
        "--output",
        str(out),
        "--val_images",
        "3",
        "--dynamic",
    ]
    assert main(args) == 0
    report = json.loads((out / "export_report.json").read_text())
    files = report["validation"]["files"]
    assert set(files) == {"rtdetr_96x160_fp32.onnx", "rtdetr_96x160_int8.onnx"}
    int8 = json.loads((out / "rtdetr_96x160_int8.json").read_text())
    assert int8["quantization"]["calibration"] == {
        "source": "video",
        "path": str(clip),
        "frames": 8,
    }
    assert int8["input"]["shape"] == ["batch", 3, "height", "width"]
    assert all(0.0 <= f["exported"]["AP"] <= 1.0 for f in files.values())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--input_size", "100", "160"], "multiples of 32"),
        (["--format", "tensorrt"], "uv sync --extra tensorrt"),
        (["--format", "torch_tensorrt"], "uv sync --extra tensorrt"),
        (["--format", "torch_tensorrt", "--precision", "int8"], "not supported"),
        (["--precision", "int8", "--calib.video", "missing.mp4"], "missing.mp4: no such video"),
    ],
)
def test_bad_export_requests_are_one_line_errors_and_write_nothing(
    trained, tmp_path, capsys, extra, message
):
    _, best = trained
    out = tmp_path / "out"
    args = ["export", "--config", RTDETR, "--ckpt_path", str(best), "--output", str(out), *extra]
    assert main(args) == 1
    assert message in one_error_line(capsys)
    assert not out.exists() or not any(out.iterdir())


def test_unknown_format_is_a_parser_error(trained, capsys):
    _, best = trained
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--config", RTDETR, "--ckpt_path", str(best), "--format", "tflite"])
    assert exit_info.value.code == 2
    assert "tflite" in one_error_line(capsys)


def test_checkpoint_of_another_model_class_is_refused(trained, tmp_path, capsys):
    _, best = trained
    args = ["export", "--config", FASTER_RCNN, "--ckpt_path", str(best), "--output", str(tmp_path)]
    assert main(args) == 1
    assert "RTDETRTask checkpoint" in one_error_line(capsys)
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_output_folder_not_writable(trained, tmp_path, capsys):
    _, best = trained
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    args = ["export", "--config", RTDETR, "--ckpt_path", str(best), "--output", str(locked)]
    assert main(args) == 1
    assert "not writable" in one_error_line(capsys)


def test_output_path_that_is_a_file_is_not_writable(trained, tmp_path, capsys):
    _, best = trained
    blocker = tmp_path / "file"
    blocker.write_text("x")
    args = ["export", "--config", RTDETR, "--ckpt_path", str(best), "--output", str(blocker / "x")]
    assert main(args) == 1
    assert "not writable" in one_error_line(capsys)


def test_disk_full_during_an_export_keeps_the_previous_export(
    trained, tmp_path, capsys, monkeypatch
):
    import errno

    from neo.deploy import export as export_module

    _, best = trained
    out = tmp_path / "exports"
    args = ["export", "--config", RTDETR, "--ckpt_path", str(best), "--output", str(out)]
    assert main(args) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert "export_report.json" in before

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export_module, "write_json", full)
    assert main(args) == 1
    assert "No space left on device" in one_error_line(capsys)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing half-replaced
