"""Cleaning of COCO splits: annotation ids, symlinked folders, dropped-box kinds and counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from neo.data import CocoDataModule, DatasetError
from neo.data.coco_index import load_coco_index, resolve_inside
from neo.metrics.coco import evaluate_coco
from tests.helpers.coco import write_coco


def box(ann_id: int, image_id: int, bbox: list[float], category_id: int = 3) -> dict:
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": bbox,
        "area": abs(bbox[2] * bbox[3]),
        "iscrowd": 0,
    }


def images(n: int) -> list[dict]:
    return [{"id": i, "file_name": f"{i}.jpg", "width": 112, "height": 64} for i in range(1, n + 1)]


def module(root: Path, **kwargs) -> CocoDataModule:
    return CocoDataModule(
        root=root,
        train_images="train",
        train_annotations="annotations/instances_train.json",
        val_images="val",
        val_annotations="annotations/instances_val.json",
        train_sizes=[(64, 128)],
        eval_size=(64, 128),
        num_workers=0,
        **kwargs,
    )


def test_annotation_id_zero_is_renumbered_so_perfect_detections_score_ap_one(tmp_path):
    anns = [box(0, 1, [10, 10, 30, 20]), box(1, 2, [20, 5, 40, 30]), box(2, 3, [5, 30, 50, 25])]
    path = write_coco(tmp_path, images(3), anns)
    ground_truth = load_coco_index(path, tmp_path / "train").ground_truth
    ids = [a["id"] for a in ground_truth["annotations"]]
    assert 0 not in ids and len(set(ids)) == 3
    detections = [
        {"image_id": a["image_id"], "category_id": 3, "bbox": a["bbox"], "score": 0.9}
        for a in ground_truth["annotations"]
    ]
    assert evaluate_coco(ground_truth, detections)["AP"] == pytest.approx(1.0)


def test_symlinked_image_folder_and_files_are_accepted(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    write_coco(elsewhere, images(2), [box(1, 1, [10, 10, 30, 20])], split="train")
    root = tmp_path / "data"
    write_coco(root, images(2), [box(1, 1, [10, 10, 30, 20])], split="val")
    for image in (root / "val").iterdir():  # a fold folder made of per-file links
        image.unlink()
        image.symlink_to(elsewhere / "train" / image.name)
    (root / "train").symlink_to(elsewhere / "train", target_is_directory=True)
    (root / "annotations" / "instances_train.json").write_bytes(
        (elsewhere / "annotations" / "instances_train.json").read_bytes()
    )
    dm = module(root)
    dm.setup("fit")
    image, target = dm.val_dataset[0]
    assert image.shape == (3, 64, 128) and target["boxes"].shape == (1, 4)
    assert len(dm.train_dataset) == 2


def test_paths_climbing_out_of_the_root_are_still_refused(tmp_path):
    root = tmp_path / "data" / "train"
    root.mkdir(parents=True)
    assert resolve_inside(root, "../val/a.jpg") is None
    assert resolve_inside(root, "x/../../a.jpg") is None
    assert resolve_inside(root, str(tmp_path / "a.jpg")) is None
    assert resolve_inside(root, "sub/../a.jpg") == root.absolute() / "a.jpg"
    path = write_coco(tmp_path / "data", [{**images(1)[0], "file_name": "../x.jpg"}], [])
    with pytest.raises(DatasetError, match=r"image path '\.\./x\.jpg' leaves the data root"):
        load_coco_index(path, root, check_files=False).report.raise_if_fatal()


def test_negative_width_has_its_own_problem_kind(tmp_path):
    anns = [box(1, 1, [50, 10, -20, 20]), box(2, 1, [10, 10, 0, 20]), box(3, 1, [10, 10, 5, 5])]
    path = write_coco(tmp_path, images(1), anns)
    counts = load_coco_index(path, tmp_path / "train").report.counts()
    assert counts["negative box size"] == 1 and counts["zero-size box"] == 1


def test_dropped_boxes_are_counted_in_one_line_per_split_at_setup(tmp_path, caplog):
    train = [box(1, 1, [50, 10, -20, 20]), box(2, 1, [10, 10, 30, 20], category_id=99)]
    write_coco(tmp_path, images(2), [*train, box(3, 2, [10, 10, 30, 20])], split="train")
    write_coco(tmp_path, images(2), [box(1, 1, [100, 10, 30, 20])], split="val")
    caplog.set_level("INFO")
    module(tmp_path).setup("fit")
    lines = [r.getMessage() for r in caplog.records if "neo data check" in r.getMessage()]
    assert len(lines) == 2
    train_line, val_line = lines
    assert train_line.startswith("train data (") and "instances_train.json" in train_line
    assert "1 negative box size" in train_line and "1 unknown category id" in train_line
    assert val_line.startswith("val data (") and "1 box clipped" in val_line


def test_training_refuses_a_truncated_jpeg_as_check_does(tmp_path):
    write_coco(tmp_path, images(2), [box(1, 1, [10, 10, 30, 20])], split="train")
    write_coco(tmp_path, images(2), [box(1, 1, [10, 10, 30, 20])], split="val")
    path = tmp_path / "train" / "2.jpg"
    path.write_bytes(path.read_bytes()[:-40])
    dm = module(tmp_path)
    dm.setup("fit")
    dm.train_dataset[0]
    with pytest.raises(DatasetError, match=r"train/2\.jpg: truncated JPEG"):
        dm.train_dataset[1]
    problems = dm.check()["train"].errors
    assert [(p.kind, Path(p.file).name) for p in problems] == [("truncated image", "2.jpg")]
