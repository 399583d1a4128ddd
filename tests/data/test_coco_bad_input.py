"""Each kind of bad COCO input gets a clear message naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neo.data import CocoDataModule, DatasetError
from neo.data.coco_index import load_coco_index
from neo.data.images import read_image
from tests.helpers.coco import write_coco

IMAGE = {"id": 1, "file_name": "a.jpg", "width": 112, "height": 64}


def ann(**overrides):
    base = {
        "id": 1,
        "image_id": 1,
        "category_id": 3,
        "bbox": [10, 10, 30, 20],
        "area": 600,
        "iscrowd": 0,
    }
    return {**base, **overrides}


def module(root: Path) -> CocoDataModule:
    return CocoDataModule(
        root=root,
        train_images="train",
        train_annotations="annotations/instances_train.json",
        val_images="train",
        val_annotations="annotations/instances_train.json",
        train_sizes=[(64, 128)],
        eval_size=(64, 128),
        num_workers=0,
    )


def test_missing_image_file_is_named(tmp_path):
    path = write_coco(tmp_path, [{**IMAGE, "_skip_file": True}], [ann()])
    index = load_coco_index(path, tmp_path / "train")
    with pytest.raises(DatasetError, match=r"a\.jpg: image file not found"):
        index.report.raise_if_fatal()


def test_corrupt_jpeg_is_named(tmp_path):
    write_coco(tmp_path, [dict(IMAGE)], [ann()])
    (tmp_path / "train" / "a.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    with pytest.raises(DatasetError, match=r"a\.jpg: cannot decode image"):
        read_image(tmp_path / "train" / "a.jpg")
    reports = module(tmp_path).check()
    assert reports["train"].counts()["corrupt image"] == 1


def test_truncated_jpeg_found_by_check(tmp_path):
    write_coco(tmp_path, [dict(IMAGE)], [ann()])
    path = tmp_path / "train" / "a.jpg"
    path.write_bytes(path.read_bytes()[:-40])
    reports = module(tmp_path).check()
    assert reports["train"].counts()["truncated image"] == 1


def test_image_size_mismatch_is_named(tmp_path):
    write_coco(tmp_path, [dict(IMAGE)], [ann()])
    data = json.loads((tmp_path / "annotations" / "instances_train.json").read_text())
    data["images"][0]["width"] = 200
    (tmp_path / "annotations" / "instances_train.json").write_text(json.dumps(data))
    dm = module(tmp_path)
    dm.setup("fit")
    with pytest.raises(DatasetError, match=r"a\.jpg: image is 112x64 but recorded as 200x64"):
        dm.train_dataset[0]


def test_image_without_annotations_kept_as_negative(tmp_path):
    path = write_coco(tmp_path, [dict(IMAGE)], [])
    index = load_coco_index(path, tmp_path / "train")
    assert len(index.images) == 1 and index.images[0].boxes.shape == (0, 4)
    dm = module(tmp_path)
    dm.setup("fit")
    image, target = dm.train_dataset[0]
    assert image.shape == (3, 64, 128) and target["boxes"].shape == (0, 4)


@pytest.mark.parametrize("bbox", [[10, 10, 0, 20], [10, 10, 30, 0]])
def test_zero_size_box_dropped_and_counted(tmp_path, bbox):
    path = write_coco(tmp_path, [dict(IMAGE)], [ann(bbox=bbox), ann(id=2)])
    index = load_coco_index(path, tmp_path / "train")
    assert index.report.counts()["zero-size box"] == 1
    assert len(index.images[0].boxes) == 1
    assert "annotation 1 of image a.jpg" in str(index.report.warnings[0])


def test_box_past_image_clipped(tmp_path):
    path = write_coco(tmp_path, [dict(IMAGE)], [ann(bbox=[100, 50, 30, 30])])
    index = load_coco_index(path, tmp_path / "train")
    assert index.report.counts()["box clipped"] == 1
    assert index.images[0].boxes.tolist() == [[100, 50, 112, 64]]
    assert index.ground_truth["annotations"][0]["bbox"] == [100, 50, 12, 14]


def test_unknown_category_skipped_and_counted(tmp_path):
    path = write_coco(tmp_path, [dict(IMAGE)], [ann(category_id=99), ann(id=2)])
    index = load_coco_index(path, tmp_path / "train")
    assert index.report.counts()["unknown category id"] == 1
    assert "unknown category id 99" in str(index.report.warnings[0])
    assert index.images[0].labels.tolist() == [0]


def test_malformed_json_names_file_and_line(tmp_path):
    (tmp_path / "annotations").mkdir()
    path = tmp_path / "annotations" / "instances_train.json"
    path.write_text('{"images": [\n  {"id": 1,,}\n]}')
    with pytest.raises(DatasetError, match=r"instances_train\.json: malformed JSON .* line 2"):
        load_coco_index(path, tmp_path)


@pytest.mark.parametrize("file_name", ["../secret.jpg", "/etc/passwd", "sub/../../x.jpg"])
def test_path_escaping_data_root_rejected(tmp_path, file_name):
    path = write_coco(tmp_path, [dict(IMAGE)], [ann()])
    data = json.loads(path.read_text())
    data["images"][0]["file_name"] = file_name
    path.write_text(json.dumps(data))
    index = load_coco_index(path, tmp_path / "train")
    assert index.report.counts()["path escapes data root"] == 1
    with pytest.raises(DatasetError, match="leaves the data root"):
        index.report.raise_if_fatal()


def test_non_contiguous_categories_map_to_contiguous_labels(tiny_coco):
    index = load_coco_index(tiny_coco / "annotations" / "instances_train.json", tiny_coco / "train")
    assert index.category_ids == [3, 7]
    assert index.images[0].labels.tolist() == [0, 1]


def test_check_reports_everything_at_once(tmp_path):
    images = [
        dict(IMAGE),
        {"id": 2, "file_name": "gone.jpg", "width": 112, "height": 64, "_skip_file": True},
        {"id": 3, "file_name": "../up.jpg", "width": 112, "height": 64, "_skip_file": True},
    ]
    write_coco(
        tmp_path,
        images,
        [ann(bbox=[0, 0, 0, 5]), ann(id=2, category_id=42), ann(id=3, bbox=[100, 0, 50, 10])],
    )
    (tmp_path / "train" / "a.jpg").write_bytes(b"garbage")
    counts = module(tmp_path).check()["train"].counts()
    for kind in (
        "missing image",
        "path escapes data root",
        "zero-size box",
        "unknown category id",
        "box clipped",
        "corrupt image",
    ):
        assert counts[kind] == 1, kind


def test_missing_data_root_says_how_to_get_coco(tmp_path):
    dm = CocoDataModule(root=tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="neo data coco --root"):
        _ = dm.num_classes
