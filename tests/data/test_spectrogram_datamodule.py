"""SpectrogramDataModule: label map, resize, grouped splits, ground truth and bad inputs."""

from __future__ import annotations

import json

import pytest
import torch

from neo.data import SpectrogramDataModule
from neo.data.problems import DatasetError
from tests.helpers.spectrograms import write_chunk, write_dataset


def make(root, **kwargs) -> SpectrogramDataModule:
    kwargs = {"image_size": 32, "num_folds": 2, "test_fraction": 0.25, "num_workers": 0, **kwargs}
    return SpectrogramDataModule(roots=[root], **kwargs)


def test_labels_splits_resize_and_ground_truth(tmp_path):
    dm = make(write_dataset(tmp_path, recordings=4, chunks=2))
    assert dm.categories == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    split = dm.split
    assert len(split.test) == 1 and len(split.val) + len(split.train) == 3
    recordings = {s: {r.recording for r in dm.records(s)} for s in ("train", "val", "test")}
    assert (
        not recordings["train"] & recordings["val"] and not recordings["val"] & recordings["test"]
    )
    assert dm.num_labeled_samples == 2 * len(split.train)
    dm.setup("fit")
    image, target = dm.val_dataset[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    record = dm.val_dataset.records[0]
    assert torch.allclose(target["boxes"], torch.from_numpy(record.boxes) * 0.5)  # 64 -> 32
    gt = dm.ground_truth("val")
    assert {i["id"] for i in gt["images"]} == {r.image_id for r in dm.records("val")}
    first = next(a for a in gt["annotations"] if a["image_id"] == record.image_id)
    assert first["bbox"][2] == pytest.approx(record.boxes[0, 2] - record.boxes[0, 0])  # original px
    assert dm.ground_truth("test")["images"][0]["id"] in {r.image_id for r in dm.records("test")}
    preprocessing = dm.inference_preprocessing()
    assert preprocessing["input_size"] == (32, 32) and preprocessing["resize"] == "stretch"
    assert dm.class_names == ["a", "b"]
    assert preprocessing["spectrogram"] == {"nfft": 64, "hop": 32, "image_size": 64}


def test_training_flip_is_in_time_only(tmp_path):
    dm = make(write_dataset(tmp_path), time_flip_prob=1.0, image_size=64)
    dm.setup("fit")
    _, target = dm.train_dataset[0]
    record = dm.train_dataset.records[0]
    x0, y0, x1, y1 = record.boxes[0].tolist()
    assert target["boxes"][0].tolist() == pytest.approx([64 - x1, y0, 64 - x0, y1])
    assert float(target["scale"][0]) == -1.0 and float(target["offset"][0]) == 64.0


def test_recording_taken_from_file_names_without_manifest(tmp_path):
    dm = make(write_dataset(tmp_path, manifest=False), test_fraction=0.0)
    assert {r.recording for r in dm._load()} == {"rec0", "rec1", "rec2", "rec3"}


def test_auto_folds_when_num_folds_is_none(tmp_path):
    dm = make(write_dataset(tmp_path), num_folds=None)
    assert dm.num_folds == 0  # 6 labelled non-test images -> plain split in the auto-tune table


def test_json_without_its_image_is_an_error_naming_the_json(tmp_path):
    root = write_dataset(tmp_path)
    bad = write_chunk(root / "20240101_000000", "rec9_000", [], image=False)
    with pytest.raises(DatasetError, match=f"{bad}.*image rec9_000.png not found"):
        _ = make(root).categories
    report = make(root).check(decode_images=False)["all"]
    assert report.counts()["missing image"] == 1


def test_unknown_and_empty_labels_are_errors_naming_the_file(tmp_path):
    root = write_dataset(tmp_path)
    with pytest.raises(DatasetError, match=r"rec0_000_bboxes\.json: box 1 has unknown label 'b'"):
        _ = make(root, labels=["a"]).categories
    box = {"label": " ", "x_min": 1, "y_min": 1, "x_max": 9, "y_max": 9}
    bad = write_chunk(root / "20240101_000000", "rec8_000", [box])
    with pytest.raises(DatasetError, match=f"{bad}: box 0 has an empty label"):
        _ = make(root).categories


def test_malformed_json_clipped_and_zero_size_boxes(tmp_path):
    run = tmp_path / "run"
    boxes = [
        {"label": "a", "x_min": -5, "y_min": 2, "x_max": 20, "y_max": 80},  # clipped
        {"label": "a", "x_min": 70, "y_min": 2, "x_max": 90, "y_max": 10},  # outside: dropped
        {"label": "b", "x_min": 10, "y_min": 10, "x_max": 10, "y_max": 30},  # zero width: dropped
    ]
    for r in range(3):
        write_chunk(run, f"r{r}_000", boxes)
    dm = make(tmp_path, num_folds=0, test_fraction=0.0)
    report = dm.check()["all"]
    assert report.counts()["box clipped to image"] == 3
    assert report.counts()["zero-size box dropped"] == 6
    assert not report.errors
    record = dm._load()[0]
    assert record.boxes.tolist() == [[0.0, 2.0, 20.0, 64.0]]
    (run / "r3_000_bboxes.json").write_text("{broken")
    with pytest.raises(DatasetError, match=r"r3_000_bboxes\.json: malformed JSON"):
        _ = make(tmp_path).categories
    assert make(tmp_path).check()["all"].counts()["malformed JSON"] == 1


def test_missing_root_and_image_size_mismatch(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found"):
        _ = make(tmp_path / "nowhere").categories
    root = write_dataset(tmp_path)
    path = root / "20240101_000000" / "rec0_000_bboxes.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "width": 100}))
    assert make(root).check()["all"].counts()["image size mismatch"] == 1


def test_inference_preprocessing_carries_the_manifest_stft_settings(tmp_path):
    root = write_dataset(tmp_path)
    manifest = root / "20240101_000000" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["settings"] = {
        "chunk_duration_s": 0.1,
        "overlap": 0.0,
        "nfft": 64,
        "hop": 32,
        "image_size": 64,
        "min_box_px": 2.0,
        "floor_percentile": 5.0,
        "ceiling_percentile": 99.0,
        "min_range_db": 30.0,
    }
    manifest.write_text(json.dumps(data))
    assert make(root, image_size=48).inference_preprocessing() == {
        "input_size": (48, 48),
        "resize": "stretch",
        "spectrogram": {
            "nfft": 64,
            "hop": 32,
            "image_size": 64,
            "chunk_duration_s": 0.1,
            "floor_percentile": 5.0,
            "ceiling_percentile": 99.0,
            "min_range_db": 30.0,
        },
    }
    bare = make(write_dataset(tmp_path / "bare", manifest=False))
    assert bare.inference_preprocessing()["spectrogram"] is None


def test_ground_truth_category_ids_come_from_the_categories(tmp_path):
    dm = make(write_dataset(tmp_path))
    dm._categories = [{"id": 10, "name": "a"}, {"id": 20, "name": "b"}]
    annotations = dm.ground_truth("val")["annotations"]
    assert {a["category_id"] for a in annotations} == {10, 20}


def test_folds_and_callback_share_one_table_lookup(tmp_path, monkeypatch):
    import neo.data.base as base

    calls = []
    real = base.auto_tune
    monkeypatch.setattr(base, "auto_tune", lambda *a: calls.append(a) or real(*a))
    dm = make(write_dataset(tmp_path), num_folds=None)
    assert dm.num_folds == 0 and dm.tuning["num_labeled_samples"] == 6
    assert dm.tuning["epochs"] == 100 and len(calls) == 1


def test_negative_boxes_have_their_own_kind_and_setup_counts_problems(tmp_path, caplog):
    root = write_dataset(tmp_path, recordings=4, chunks=1)
    swapped = {"label": "a", "x_min": 30, "y_min": 2, "x_max": 10, "y_max": 20}
    clipped = {"label": "b", "x_min": -4, "y_min": 2, "x_max": 10, "y_max": 20}
    write_chunk(root / "20240101_000000", "rec0_000", [swapped, clipped])
    report = make(root).check()["all"]
    assert report.counts()["negative box size"] == 1
    assert "zero-size box dropped" not in report.counts()
    caplog.set_level("INFO")
    dm = make(root, num_folds=0, test_fraction=0.0, val_fraction=0.25)
    dm.setup("fit")
    lines = [r.getMessage() for r in caplog.records if "neo data check" in r.getMessage()]
    split = "train" if "rec0" in dm.split.train else "val"
    assert len(lines) == 1 and lines[0].startswith(f"{split} data (")
    assert "1 negative box size" in lines[0] and "1 box clipped to image" in lines[0]
