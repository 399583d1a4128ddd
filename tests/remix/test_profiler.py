from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from neo.data.problems import DatasetError
from neo.remix import profiler
from neo.remix.detector import CallableDetector
from neo.remix.files import Profile, load_profiles, save_profiles
from neo.remix.profiler import (
    NNProfiler,
    accuracy_vector,
    accuracy_vector_against,
    fill_empty_bins,
    measure_latency,
)

IMAGE_SIZE = (320, 240)
# (image index, x, y, side): at scale 1 the sides fall in bins 0..9 (bins 10 and 11 stay empty)
SQUARES = [
    (0, 10, 10, 5),
    (0, 30, 10, 9),
    (0, 55, 10, 14),
    (0, 85, 10, 24),
    (0, 125, 10, 36),
    (0, 175, 10, 48),
    (0, 10, 100, 64),
    (0, 100, 100, 84),
    (0, 195, 100, 120),
    (1, 10, 10, 200),
]


def components_detector(
    name: str, input_size: tuple[int, int], min_side: int = 0, max_side: int = 10_000
) -> CallableDetector:
    """Finds the white rectangles of the input with sides in [min_side, max_side] input pixels."""

    def detect(images: np.ndarray) -> list:
        results = []
        for image in images:
            mask = (image.max(axis=2) > 127).astype(np.uint8)
            count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
            boxes = [
                [x, y, x + w, y + h]
                for x, y, w, h, _ in stats[1:count]
                if min_side <= min(w, h) and max(w, h) <= max_side
            ]
            boxes_array = np.array(boxes, np.float32).reshape(-1, 4)
            results.append(
                (boxes_array, np.full(len(boxes), 0.9, np.float32), np.zeros(len(boxes), np.int64))
            )
        return results

    return CallableDetector(name, input_size, detect)


def make_frames(squares: list[tuple[int, int, int, int]], count: int) -> list[np.ndarray]:
    frames = [np.zeros((IMAGE_SIZE[1], IMAGE_SIZE[0], 3), np.uint8) for _ in range(count)]
    for index, x, y, side in squares:
        frames[index][y : y + side, x : x + side] = 255
    return frames


def write_dataset(
    folder: Path, squares: list[tuple[int, int, int, int]], count: int
) -> tuple[Path, Path, list[np.ndarray]]:
    frames = make_frames(squares, count)
    images_root = folder / "images"
    images_root.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(images_root / f"{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    coco = {
        "images": [
            {"id": i + 1, "file_name": f"{i}.png", "width": IMAGE_SIZE[0], "height": IMAGE_SIZE[1]}
            for i in range(count)
        ],
        "annotations": [
            {
                "id": k + 1,
                "image_id": index + 1,
                "category_id": 7,
                "bbox": [x, y, side, side],
                "area": side * side,
                "iscrowd": 0,
            }
            for k, (index, x, y, side) in enumerate(squares)
        ],
        "categories": [{"id": 7, "name": "player"}],
    }
    annotation_path = folder / "instances.json"
    annotation_path.write_text(json.dumps(coco))
    return annotation_path, images_root, frames


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path, list[np.ndarray]]:
    return write_dataset(tmp_path, SQUARES, 2)


def test_latency_has_every_batch_size_from_counted_calls() -> None:
    calls: list[tuple[int, ...]] = []

    def detect(images: np.ndarray) -> list:
        calls.append(images.shape)
        return [(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))] * len(images)

    detector = CallableDetector("fake", (64, 48), detect)
    latencies = measure_latency(detector, batch_sizes=(4, 1, 2), warmup=2, runs=7)
    assert list(latencies) == [1, 2, 4]
    assert all(seconds > 0 for seconds in latencies.values())
    for size in (1, 2, 4):
        assert calls.count((size, 48, 64, 3)) == 2 + 7
    assert len(calls) == 3 * 9
    with pytest.raises(ValueError):
        measure_latency(detector, runs=0)


def test_latency_is_the_median_of_the_timed_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(float(t) for t in [0, 1, 10, 13, 20, 20.5, 30, 40, 50, 50.2])
    monkeypatch.setattr(profiler.time, "perf_counter", lambda: next(clock))
    detector = CallableDetector("fake", (8, 8), lambda images: [])
    # durations 1, 3, 0.5, 10, 0.2 -> median 1
    assert measure_latency(detector, batch_sizes=(1,), warmup=0, runs=5) == {1: 1.0}


def test_perfect_detector_scores_one_in_every_populated_bin(dataset) -> None:
    annotations, images_root, _ = dataset
    acc = accuracy_vector(components_detector("perfect", IMAGE_SIZE), annotations, images_root)
    assert acc.shape == (12,)
    np.testing.assert_allclose(acc, 1.0)


def test_detector_missing_small_objects_scores_zero_in_small_bins(dataset) -> None:
    annotations, images_root, _ = dataset
    detector = components_detector("no_small", IMAGE_SIZE, min_side=32)
    acc = accuracy_vector(detector, annotations, images_root)
    np.testing.assert_allclose(acc[:4], 0.0)
    np.testing.assert_allclose(acc[4:], 1.0)


def test_bins_count_object_size_in_the_detector_input(tmp_path: Path) -> None:
    # at half scale the 40 px square is 20 px in the input (bin 3), the 120 px one 60 px (bin 6)
    squares = [(0, 20, 20, 40), (0, 100, 60, 120)]
    annotations, images_root, _ = write_dataset(tmp_path, squares, 1)
    detector = components_detector("half", (160, 120), min_side=32)
    acc = accuracy_vector(detector, annotations, images_root)
    assert acc[3] == 0.0 and acc[6] == 1.0
    # empty bins: 0..2 and 4 nearest bin 3, 5 and 7..11 nearest bin 6
    np.testing.assert_allclose(acc, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1])


def test_false_positives_lower_the_ap(dataset) -> None:
    annotations, images_root, _ = dataset
    perfect = components_detector("perfect", IMAGE_SIZE)

    def noisy(images: np.ndarray) -> list:
        results = []
        for boxes, scores, labels in perfect(images):
            fake = np.array([[250, 200, 290, 236]], np.float32)  # 40x36: bin 4, no object there
            results.append(
                (np.vstack([fake, boxes]), np.r_[np.float32(1.0), scores], np.r_[0, labels])
            )
        return results

    acc = accuracy_vector(CallableDetector("noisy", IMAGE_SIZE, noisy), annotations, images_root)
    assert 0.3 < acc[4] < 1.0
    np.testing.assert_allclose(np.delete(acc, 4), 1.0)


def test_fill_empty_bins() -> None:
    values = np.array([-1, 0.4, -1, -1, -1, 0.8, -1, -1, -1, -1, -1, 0.2])
    filled = fill_empty_bins(values)
    np.testing.assert_allclose(filled, [0.4, 0.4, 0.4, 0.6, 0.8, 0.8, 0.8, 0.8, 0.5, 0.2, 0.2, 0.2])
    np.testing.assert_allclose(fill_empty_bins(np.full(12, -1.0)), np.zeros(12))


def test_oracle_variant_equals_ground_truth_variant(dataset) -> None:
    annotations, images_root, frames = dataset
    oracle = components_detector("oracle", IMAGE_SIZE)
    for detector in (
        components_detector("no_small", IMAGE_SIZE, min_side=32),
        components_detector("half", (160, 120), min_side=20),
    ):
        against_oracle = accuracy_vector_against(detector, oracle, frames)
        against_truth = accuracy_vector(detector, annotations, images_root)
        np.testing.assert_allclose(against_oracle, against_truth)
    low_scores = CallableDetector(
        "weak_oracle",
        IMAGE_SIZE,
        lambda images: [(b, s * 0.1, lab) for b, s, lab in oracle(images)],
    )
    # an oracle under the threshold labels nothing: every bin empty, filled with 0
    detector = components_detector("no_small", IMAGE_SIZE)
    np.testing.assert_allclose(accuracy_vector_against(detector, low_scores, frames), 0.0)


def test_class_aware_accuracy_needs_matching_categories(dataset) -> None:
    annotations, images_root, _ = dataset
    detector = components_detector("perfect", IMAGE_SIZE)
    right = accuracy_vector(detector, annotations, images_root, category_ids=[7])
    np.testing.assert_allclose(right, 1.0)
    coco = json.loads(annotations.read_text())
    coco["categories"].append({"id": 9, "name": "ball"})
    wrong = accuracy_vector(detector, coco, images_root, category_ids=[9])
    np.testing.assert_allclose(wrong, 0.0)


def test_bad_inputs_name_the_problem(dataset, tmp_path: Path) -> None:
    annotations, images_root, _ = dataset
    detector = components_detector("perfect", IMAGE_SIZE)
    coco = json.loads(annotations.read_text())
    coco["images"][0]["file_name"] = "../escape.png"
    with pytest.raises(DatasetError, match="outside"):
        accuracy_vector(detector, coco, images_root)
    coco["images"][0]["file_name"] = "missing.png"
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        accuracy_vector(detector, coco, images_root)
    with pytest.raises(FileNotFoundError):
        accuracy_vector(detector, tmp_path / "nope.json", images_root)


def test_max_images_evaluates_the_first_images_only(dataset) -> None:
    annotations, images_root, _ = dataset
    detector = components_detector("no_huge", IMAGE_SIZE, max_side=150)
    assert accuracy_vector(detector, annotations, images_root)[9] == 0.0
    acc = accuracy_vector(detector, annotations, images_root, max_images=1)
    np.testing.assert_allclose(acc, 1.0)  # bin 9 (image 2 only) is filled from bin 8


def test_profile_all_writes_loadable_profiles(dataset, tmp_path: Path) -> None:
    annotations, images_root, _ = dataset
    path = tmp_path / "profiles.json"
    save_profiles(path, {"old": Profile("old", 0.5, tuple([0.5] * 12), (64, 64))})
    detectors = [
        components_detector("perfect_320x240", IMAGE_SIZE),
        components_detector("no_small_320x240", IMAGE_SIZE, min_side=32),
    ]
    result = NNProfiler(batch_sizes=(2,), warmup=1, runs=3).profile_all(
        detectors, annotations, images_root, path=path
    )
    loaded = load_profiles(path)
    assert sorted(loaded) == ["no_small_320x240", "old", "perfect_320x240"]
    for name, profile in result.items():
        assert loaded[name] == profile
        assert profile.input_size == IMAGE_SIZE
        assert sorted(profile.latency_per_batch) == [1, 2]
        assert profile.latency == profile.latency_per_batch[1] > 0
    assert loaded["perfect_320x240"].acc_vector == tuple([1.0] * 12)
    assert loaded["no_small_320x240"].acc_vector[:4] == (0.0,) * 4


def test_remix_profile_runs_every_model_at_every_size(
    dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    annotations, images_root, _ = dataset

    def fake_deployed(path: Path, input_size, device: str) -> CallableDetector:
        detector = components_detector(f"{path.stem}_{input_size[0]}x{input_size[1]}", input_size)
        detector.model = type("Model", (), {"inference": type("Spec", (), {"category_ids": [7]})})
        return detector

    monkeypatch.setattr(profiler, "DeployedDetector", fake_deployed)
    out = tmp_path / "profiles.json"
    profiles = profiler.remix_profile(
        [tmp_path / "a.ckpt", tmp_path / "b.onnx"],
        annotations,
        images_root,
        input_sizes=[(320, 240), (160, 120)],
        out=out,
        batch_sizes=[1],
        runs=2,
        class_agnostic=False,
    )
    names = ["a_160x120", "a_320x240", "b_160x120", "b_320x240"]
    assert sorted(profiles) == names
    assert sorted(load_profiles(out)) == names
    assert load_profiles(out)["a_320x240"].acc_vector == tuple([1.0] * 12)
    printed = capsys.readouterr().out
    assert all(name in printed for name in names) and "160x120" in printed


def test_callback_profiles_the_trained_task(dataset, tmp_path: Path) -> None:
    from types import SimpleNamespace

    import torch

    from neo.callbacks.remix_profiling import RemixProfiling

    annotations, images_root, _ = dataset
    finder = components_detector("finder", IMAGE_SIZE)

    class FakeTask:
        device = torch.device("cpu")
        category_ids = (7,)
        inference_spec = SimpleNamespace(input_size=(IMAGE_SIZE[1], IMAGE_SIZE[0]))

        def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
            assert images.dtype == torch.uint8 and images.shape[1] == 3
            found = finder(images.permute(0, 2, 3, 1).numpy())
            boxes = torch.zeros(len(found), 20, 4)
            scores = torch.zeros(len(found), 20)
            labels = torch.full((len(found), 20), -1)
            for i, (b, s, lab) in enumerate((b[:20], s[:20], lab[:20]) for b, s, lab in found):
                boxes[i, : len(b)], scores[i, : len(b)] = torch.from_numpy(b), torch.from_numpy(s)
                labels[i, : len(b)] = torch.from_numpy(lab)
            return boxes, scores, labels

    coco = json.loads(annotations.read_text())
    trainer = SimpleNamespace(
        is_global_zero=True,
        fast_dev_run=False,
        interrupted=False,
        log_dir=str(tmp_path / "run_7"),
        default_root_dir=str(tmp_path),
        datamodule=SimpleNamespace(
            ground_truth=lambda stage: coco, image_folder=lambda split: images_root
        ),
    )
    path = tmp_path / "profiles.json"
    callback = RemixProfiling(path, input_sizes=None, batch_sizes=[1, 2], runs=2, max_images=None)
    callback.on_fit_end(trainer, FakeTask())
    loaded = load_profiles(path)
    assert list(loaded) == ["run_7_320x240"]
    assert loaded["run_7_320x240"].acc_vector == tuple([1.0] * 12)
    assert sorted(loaded["run_7_320x240"].latency_per_batch) == [1, 2]
    named = RemixProfiling(
        path, [(160, 120)], batch_sizes=[1], runs=2, name="scene", class_agnostic=False
    )
    named.on_fit_end(trainer, FakeTask())
    loaded = load_profiles(path)
    assert sorted(loaded) == ["run_7_320x240", "scene_160x120"]
    assert loaded["scene_160x120"].input_size == (160, 120)
    trainer.is_global_zero = False
    callback_other_rank = RemixProfiling(tmp_path / "other.json")
    callback_other_rank.on_fit_end(trainer, FakeTask())
    assert not (tmp_path / "other.json").exists()
