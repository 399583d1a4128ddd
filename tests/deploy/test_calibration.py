"""Calibration frames: real frames through the evaluation letterbox; bad sources are errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from neo.data.synth import write_video
from neo.data.transforms import EvalTransform
from neo.deploy.calibration import (
    CalibrationConfig,
    calibration_batch,
    collect_calibration,
    collect_calibration_data,
    extract_calibration_frames,
)
from neo.deploy.frames import read_video_frames
from neo.deploy.preprocess import FramePreprocessor
from neo.inference.spec import InferenceSpec

SPEC = InferenceSpec("neo.tasks.RTDETRTask", [1], ["a"])


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("v") / "clip.avi", 30, 90, 160, scene_frames=5)


def test_synth_clip_reads_back_and_is_sampled_evenly_over_the_whole_video(clip):
    capture = cv2.VideoCapture(str(clip))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 30
    capture.release()
    frames = read_video_frames(clip, 4)
    assert len(frames) == 4 and frames[0].shape == (90, 160, 3)
    # frames 0, 10, 19, 29: four different scenes (a new one every 5 frames)
    assert len({f.tobytes() for f in frames}) == 4
    assert not list(clip.parent.glob(".*"))  # no temporary left


def test_short_video_uses_every_frame_with_a_counted_warning(clip):
    with pytest.warns(UserWarning, match="30 frames, fewer than the 50"):
        assert len(read_video_frames(clip, 50)) == 30


def test_missing_and_unreadable_videos_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.mp4: no such video"):
        collect_calibration(
            CalibrationConfig(video=tmp_path / "nope.mp4"), FramePreprocessor(SPEC, (64, 96))
        )
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 100)
    with pytest.raises(ValueError, match=r"garbage\.mp4"):
        read_video_frames(garbage, 4)


def test_image_folder_without_images_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="no images"):
        collect_calibration(CalibrationConfig(images=tmp_path), FramePreprocessor(SPEC, (64, 96)))


def test_frames_are_letterboxed_like_evaluation_and_rgb(tmp_path):
    frame = np.zeros((90, 160, 3), np.uint8)
    frame[..., 0] = 200  # red in RGB
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    batch, source = collect_calibration(
        CalibrationConfig(images=tmp_path, num_frames=4), FramePreprocessor(SPEC, (96, 160))
    )
    assert source == {"source": "images", "path": str(tmp_path), "frames": 1}
    expected = EvalTransform((96, 160))(frame, np.zeros((0, 4)), np.zeros(0)).image
    assert np.array_equal((batch[0].permute(1, 2, 0).numpy() * 255).round(), expected)
    assert batch[0, 0, :90].mean() > 0.7 and batch[0, 2, :90].max() == 0  # R high, B zero
    assert np.allclose(batch[0, :, 90:].numpy(), 114 / 255)  # padded bottom rows, grey


def test_synthetic_frames_only_when_allowed_and_loudly():
    preprocessor = FramePreprocessor(SPEC, (64, 96))
    with pytest.raises(ValueError, match="no INT8 calibration frames"):
        collect_calibration(CalibrationConfig(), preprocessor)
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        batch, source = collect_calibration(
            CalibrationConfig(allow_synthetic=True, num_frames=3), preprocessor
        )
    assert batch.shape == (3, 3, 64, 96) and source["source"] == "synthetic"
    with pytest.raises(FileNotFoundError, match="no calibration video"):
        collect_calibration_data(None, 2, (1, 3, 64, 96))
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        assert len(collect_calibration_data(None, 2, (1, 3, 64, 96), allow_synthetic=True)) == 2


def test_seed_api_gives_letterboxed_nchw_arrays(clip):
    frames = extract_calibration_frames(clip, 3, (96, 160))
    assert len(frames) == 3 and frames[0].shape == (1, 3, 96, 160)
    assert frames[0].dtype == np.float32 and frames[0].min() >= 0.0 and frames[0].max() <= 1.0
    assert np.allclose(frames[0][0, :, 90:], 114 / 255)
    assert len(collect_calibration_data(clip, 2, (1, 3, 96, 160))) == 2


def test_auto_method_is_modelopt_for_tensorrt_and_onnx_runtime_otherwise():
    assert CalibrationConfig().resolved_method("onnx") == "ort"
    assert CalibrationConfig().resolved_method("tensorrt") == "modelopt"
    assert CalibrationConfig(method="ort").resolved_method("tensorrt") == "ort"


def test_source_precedence_and_training_split_fallback(clip, tmp_path):
    preprocessor = FramePreprocessor(SPEC, (64, 96))
    calls = []

    def training_frames(count):
        calls.append(count)
        return [np.full((64, 96, 3), 50, np.uint8)] * 2

    config = CalibrationConfig(video=clip, images=tmp_path, num_frames=3)
    batch, source = collect_calibration(config, preprocessor, training_frames)
    assert source == {"source": "video", "path": str(clip), "frames": 3} and not calls
    batch, source = collect_calibration(
        CalibrationConfig(num_frames=5), preprocessor, training_frames
    )
    assert calls == [5] and source == {"source": "training split", "path": None, "frames": 2}
    assert torch.allclose(batch, torch.full_like(batch, 50 / 255))


def test_bad_counts_and_missing_folder_are_errors(tmp_path):
    preprocessor = FramePreprocessor(SPEC, (64, 96))
    with pytest.raises(ValueError, match=r"--calib\.num_frames 0"):
        collect_calibration(CalibrationConfig(allow_synthetic=True, num_frames=0), preprocessor)
    with pytest.raises(FileNotFoundError, match=r"absent: no such folder"):
        collect_calibration(CalibrationConfig(images=tmp_path / "absent"), preprocessor)
    with pytest.raises(ValueError, match="no calibration frames"):
        calibration_batch([], preprocessor)
