"""Precision for a target FPS: the selection, the measurement loop and the seed's entry point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from neo.deploy.benchmark import BenchmarkResult
from neo.deploy.fps import (
    Candidate,
    Measurement,
    available_forms,
    measure_candidates,
    optimize_for_fps,
    select,
)
from tests.deploy.tiny_onnx import tiny_onnx, tiny_video


def m(name, ap, fps, power_w=None, error=None) -> Measurement:
    latency = 1000 / fps if fps else None
    return Measurement(name, "onnx", "fp32", f"{name}.onnx", ap, fps, latency, 1, power_w, error)


def test_the_most_accurate_form_that_meets_the_target_is_chosen():
    forms = [m("pytorch-fp32", 0.50, 8), m("onnx-fp32", 0.50, 12), m("onnx-int8", 0.48, 25),
             m("tensorrt-fp16", 0.495, 60)]
    choice, text = select(forms, target_fps=10)
    assert choice.name == "onnx-fp32"  # ties in AP go to the faster form
    assert "onnx-fp32 is the most accurate form that reaches 10 FPS" in text
    choice, text = select(forms, target_fps=30)
    assert choice.name == "tensorrt-fp16"
    assert "pytorch-fp32 is more accurate (AP 0.500) but reaches only 8.0 FPS" in text


def test_the_power_cap_is_respected_where_power_is_measured():
    forms = [m("tensorrt-fp16", 0.50, 90, power_w=70.0), m("tensorrt-int8", 0.48, 150, 40.0),
             m("onnx-int8", 0.47, 40)]
    choice, text = select(forms, target_fps=30, max_power_w=50)
    assert choice.name == "tensorrt-int8"
    assert "tensorrt-fp16 is more accurate (AP 0.500) but draws 70.0 W, above the cap" in text
    forms = [m("onnx-int8", 0.47, 40)]
    choice, text = select(forms, target_fps=30, max_power_w=50)
    assert choice.name == "onnx-int8" and "50 W cap could not be checked for them" in text


def test_nothing_meets_the_target_names_the_fastest():
    forms = [m("pytorch-fp32", 0.5, 2.0), m("onnx-int8", 0.47, 6.5),
             m("tensorrt-fp16", None, None, error="TensorRT is not installed")]
    choice, text = select(forms, target_fps=30)
    assert choice is None
    assert "No candidate reaches 30 FPS" in text and "onnx-int8 (AP 0.470, 6.5 FPS)" in text
    assert "Not measured: tensorrt-fp16 (TensorRT is not installed)" in text
    choice, text = select([m("tensorrt-fp16", 0.5, 90, power_w=80.0)], 30, max_power_w=50)
    assert choice is None and "over the power cap: tensorrt-fp16" in text
    assert select([], 30) == (None, "No candidate could be built and measured.")


def test_measurement_loop_keeps_failures_and_evaluates_the_built_file(tmp_path):
    evaluated = []

    def build(name):
        def inner():
            if name == "broken":
                raise ValueError("cannot build broken")
            path = tmp_path / f"{name}.onnx"
            path.write_bytes(b"x")
            return path
        return inner

    def evaluate(path):
        evaluated.append(path.name)
        return {"fast.onnx": 0.4, "slow.onnx": 0.5}[path.name]

    def time_model(path):
        fps = {"fast.onnx": 50.0, "slow.onnx": 5.0}[path.name]
        return BenchmarkResult(path.stem, "fp32", 1, "1x3x32x64", 0.1, 1000 / fps, 30000.0, 50.0,
                               "random", "onnxruntime", 1, 1, 1, fps, 1, "x", "cpu", 1, 1, 0,
                               str(path), "now")

    candidates = [Candidate(n, "onnx", "fp32", build(n), evaluate)
                  for n in ("slow", "broken", "fast")]
    measured = measure_candidates(candidates, time_model)
    assert [x.name for x in measured] == ["slow", "broken", "fast"]
    assert measured[1].error == "cannot build broken" and measured[1].ap is None
    assert measured[2].fps == 50.0 and measured[2].power_w == 30.0 and measured[2].ap == 0.4
    assert evaluated == ["slow.onnx", "fast.onnx"]


def test_available_forms_on_a_cpu():
    assert available_forms("cpu") == [("pytorch", "fp32"), ("onnx", "fp32"), ("onnx", "int8")]


def test_optimize_for_fps_measures_real_files_and_writes_its_report(tmp_path):
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"weights")
    base = tiny_onnx(tmp_path / "base.onnx")
    video = tiny_video(tmp_path / "clip.avi")

    def copy(name: str):
        def build() -> Path:
            path = tmp_path / "out" / f"{name}.onnx"
            path.parent.mkdir(exist_ok=True)
            shutil.copy(base, path)
            shutil.copy(base.with_suffix(".json"), path.with_suffix(".json"))
            return path
        return build

    aps = {"onnx-fp32": 0.61, "onnx-int8": 0.58}
    candidates = [Candidate(name, "onnx", name[5:], copy(name), lambda p: aps[p.stem])
                  for name in aps]
    result = optimize_for_fps(checkpoint, target_fps=1, video_path=video,
                              output_path=tmp_path / "out", candidates=candidates, device="cpu",
                              runs=2, warmup=1, num_frames=4)
    assert result["met"] and result["choice"]["name"] == "onnx-fp32"
    assert "onnx-fp32 is the most accurate form that reaches 1 FPS" in result["explanation"]
    report = json.loads((tmp_path / "out" / "fps_report.json").read_text())
    assert report["choice"]["ap"] == 0.61 and len(report["candidates"]) == 2
    result = optimize_for_fps(checkpoint, target_fps=1e9, video_path=video,
                              output_path=tmp_path / "out", candidates=candidates, device="cpu",
                              runs=1, warmup=0, num_frames=2)
    assert not result["met"] and result["choice"] is None
    assert result["explanation"].startswith("No candidate reaches 1e+09 FPS")


def test_optimize_for_fps_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        optimize_for_fps(tmp_path / "none.ckpt", 30)
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"weights")
    with pytest.raises(ValueError, match="must be positive"):
        optimize_for_fps(checkpoint, 0)
    with pytest.raises(ValueError, match="must be positive"):
        optimize_for_fps(checkpoint, 30, max_power_w=-1)
    with pytest.raises(FileNotFoundError, match="no such video"):
        optimize_for_fps(checkpoint, 30, video_path=tmp_path / "none.mp4", candidates=[],
                         output_path=tmp_path / "o")
    assert not (tmp_path / "o").exists()
