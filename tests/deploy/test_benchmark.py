"""``neo benchmark``: frames, timing, the seed's CSV columns, and its bad inputs."""

from __future__ import annotations

import csv
import sys

import cv2
import numpy as np
import pytest
import torch

from neo.deploy.benchmark import (
    COLUMNS,
    SEED_COLUMNS,
    benchmark_model,
    percentile,
    write_csv,
)
from neo.deploy.contract import DeploySpec
from neo.deploy.frames import even_indices, read_image_folder, read_video_frames, source_frames
from neo.deploy.runtime import DeployedModel
from tests.deploy.tiny_onnx import SPEC, tiny_onnx, tiny_video


class Recorder(DeployedModel):
    """Returns empty detections and records the first pixel of every image it is given."""

    backend = "fake"

    def __init__(self, path, batch=None):
        spec = DeploySpec("onnx", "fp16", SPEC, (32, 64), batch=batch or 1,
                          dynamic_batch=batch is None)
        super().__init__(path, "fp16", SPEC, spec, torch.device("cpu"))
        self.seen: list[list[float]] = []

    def run(self, images):
        self.seen.append([round(v, 2) for v in images[:, 0, 0, 0].tolist()])
        n = images.shape[0]
        return torch.zeros(n, 1, 4), torch.zeros(n, 1), torch.zeros(n, 1, dtype=torch.long)


def numbered_frames(count: int) -> torch.Tensor:
    """Frame ``i`` is filled with ``i / 100``."""
    return torch.arange(count).float().div(100).view(-1, 1, 1, 1).expand(-1, 3, 32, 64).clone()


@pytest.fixture
def neo_main(monkeypatch):
    import neo.cli as cli

    monkeypatch.setitem(cli.TOOL_VERBS, "benchmark", "neo.commands.benchmark")
    return cli.main


# ------------------------------------------------------------------------------ frames
def test_even_indices_cover_the_whole_range():
    assert even_indices(100, 4) == [0, 33, 66, 99]
    assert even_indices(3, 10) == [0, 1, 2]


def test_video_frames_are_sampled_over_the_whole_clip_as_rgb(tmp_path):
    video = tiny_video(tmp_path / "clip.avi", frames=10)
    frames = read_video_frames(video, 4)
    assert len(frames) == 4 and frames[0].shape == (64, 112, 3) and frames[0].dtype == np.uint8
    reds = [int(f[:, :, 0].mean().round()) for f in frames]  # red is channel 0 once RGB
    assert reds == pytest.approx([0, 60, 120, 180], abs=4)
    assert all(f[:, :, 2].mean() < 4 for f in frames)


def test_a_short_video_gives_all_its_frames_with_a_warning(tmp_path):
    video = tiny_video(tmp_path / "clip.avi", frames=5)
    with pytest.warns(UserWarning, match="5 frames, fewer than the 20 asked for"):
        assert len(read_video_frames(video, 20)) == 5


def test_missing_or_unreadable_video(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such video"):
        read_video_frames(tmp_path / "none.mp4", 4)
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(ValueError) as error:
        read_video_frames(tmp_path / "text.mp4", 4)
    assert "text.mp4" in str(error.value) and "\n" not in str(error.value)


def test_image_folder(tmp_path):
    import cv2

    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        read_image_folder(tmp_path / "empty", 4)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((8, 8, 3), (0, 0, 50 * i), np.uint8))
    images = read_image_folder(folder, 3)
    assert [int(im[0, 0, 0]) for im in images] == [0, 100, 200]
    frames, name = source_frames(None, folder, 2)
    assert name == "imgs" and len(frames) == 2
    assert source_frames(None, None, 2) == (None, "random")


# ------------------------------------------------------------------------------ timing
def test_percentile():
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    assert percentile(list(range(11)), 90) == pytest.approx(9.0)
    assert percentile([7.0], 90) == 7.0


def test_benchmark_model_times_each_batch_in_turn(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"x" * 2048)
    model = Recorder(path)
    result = benchmark_model(model, numbered_frames(5), runs=3, warmup=1,
                             frame_source_name="clip", batch=2)
    # 1 warm-up + 3 timed batches of 2, wrapping around the 5 frames
    assert model.seen == [[0.0, 0.01], [0.02, 0.03], [0.04, 0.0], [0.01, 0.02]]
    assert result.engine_shape == "2x3x32x64" and result.engine_batch == 2
    assert result.engine_name == "m" and result.backend == "fake"
    assert result.engine_precision == "fp16" and result.frame_source_name == "clip"
    assert result.runs == 3 and result.warmup == 1
    assert result.fps == pytest.approx(2000.0 / result.trt_latency_ms)
    assert result.latency_min_ms <= result.trt_latency_ms <= result.latency_p90_ms
    assert result.engine_size_MB == pytest.approx(2048 / 2**20)
    assert result.power_mW is None and result.gpu_temp_C is None  # no GPU here
    assert result.memory_source == "process_rss_growth" and result.peak_memory_MB >= 0


def test_a_fixed_batch_model_refuses_another_batch(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match="exported for batch 4; benchmark it with --batch 4"):
        benchmark_model(Recorder(path, batch=4), numbered_frames(4), runs=1, batch=2)
    result = benchmark_model(Recorder(path, batch=4), numbered_frames(4), runs=1, warmup=0)
    assert result.engine_batch == 4
    with pytest.raises(ValueError, match="runs must be at least 1"):
        benchmark_model(Recorder(path), numbered_frames(4), runs=0)


def test_csv_has_the_seed_columns_first_and_appends(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"x")
    result = benchmark_model(Recorder(path), numbered_frames(2), runs=2, warmup=0)
    out = tmp_path / "bench.csv"
    out.write_text("engine_name,trt_latency_ms,note\nold,1.5,kept\n")
    write_csv(out, [result])
    with open(out, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        header = reader.fieldnames
    assert tuple(header[: len(SEED_COLUMNS)]) == SEED_COLUMNS
    assert tuple(header[: len(COLUMNS)]) == COLUMNS and header[-1] == "note"
    assert [r["engine_name"] for r in rows] == ["old", "m"]
    assert rows[0]["note"] == "kept" and rows[1]["power_mW"] == ""
    assert float(rows[1]["trt_latency_ms"]) == pytest.approx(result.trt_latency_ms, abs=1e-3)
    write_csv(out, [result], append=False)
    assert len(out.read_text().strip().splitlines()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.csv", "m.onnx"]


# ------------------------------------------------------------------------------ command line
def test_neo_benchmark_times_an_onnx_model_on_video_frames(tmp_path, neo_main, capsys):
    model = tiny_onnx(tmp_path / "tiny.onnx")
    video = tiny_video(tmp_path / "clip.avi")
    out = tmp_path / "results" / "bench.csv"
    args = ["benchmark", "--model", str(model), "--video", str(video), "--frames", "4",
            "--runs", "3", "--warmup", "1", "--batch", "2", "--output", str(out)]
    assert neo_main(args) == 0
    assert neo_main(args) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2  # the second run appended
    row = rows[0]
    assert row["engine_name"] == "tiny" and row["frame_source_name"] == "clip"
    assert row["backend"] == "onnxruntime" and row["engine_shape"] == "2x3x32x64"
    assert float(row["fps"]) > 0 and row["engine_precision"] == "fp32"
    assert "tiny" in capsys.readouterr().out
    bars = cv2.imread(str(out.with_suffix(".png")))  # the latency bars beside the CSV
    assert bars is not None and bars.std() > 10


def one_error_line(capsys) -> str:
    (line,) = capsys.readouterr().err.strip().splitlines()
    return line


@pytest.mark.parametrize("case", ["missing model", "missing video", "both sources",
                                  "bad input size", "unknown suffix", "engine", "output"])
def test_neo_benchmark_bad_input(tmp_path, neo_main, capsys, monkeypatch, case):
    model = tiny_onnx(tmp_path / "tiny.onnx")
    video = tiny_video(tmp_path / "clip.avi")
    out = tmp_path / "bench.csv"
    args = ["--model", str(model)]
    expected = ""
    if case == "missing model":
        args = ["--model", str(tmp_path / "none.onnx")]
        expected = "none.onnx: no such model file"
    elif case == "missing video":
        args += ["--video", str(tmp_path / "none.mp4")]
        expected = "none.mp4: no such video"
    elif case == "both sources":
        args += ["--video", str(video), "--images", str(tmp_path)]
        expected = "give --video or --images, not both"
    elif case == "bad input size":
        args += ["--input_size", "100", "64"]
        expected = "multiples of 32"
    elif case == "unknown suffix":
        (tmp_path / "m.pt").write_bytes(b"x")
        args = ["--model", str(tmp_path / "m.pt")]
        expected = "unknown model type .pt"
    elif case == "engine":
        monkeypatch.setitem(sys.modules, "tensorrt", None)
        (tmp_path / "m.engine").write_bytes(b"x")
        args = ["--model", str(model), str(tmp_path / "m.engine")]
        expected = "TensorRT is not installed"
    elif case == "output":
        (tmp_path / "file").write_text("a file, not a folder")
        out = tmp_path / "file" / "bench.csv"
        expected = "not writable"
    assert neo_main(["benchmark", *args, "--runs", "1", "--warmup", "0",
                     "--output", str(out)]) == 1
    line = one_error_line(capsys)
    assert line.startswith("neo: error:") and expected in line
    assert not out.exists()
