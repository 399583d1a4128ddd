from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from neo.data.problems import DatasetError
from neo.remix import scenes
from neo.remix.distribution import from_coco
from neo.remix.scenes import split_history, synth_scenes

WIDTH, HEIGHT, FRAMES = 480, 270, 8


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scenes") / "scene"
    return synth_scenes(out, num_frames=FRAMES, width=WIDTH, height=HEIGHT, max_objects=40)


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def boxes_by_frame(coco: dict) -> dict[int, np.ndarray]:
    grouped: dict[int, list] = defaultdict(list)
    for annotation in coco["annotations"]:
        grouped[annotation["image_id"]].append(annotation["bbox"])
    return {k: np.array(v, dtype=np.float64) for k, v in grouped.items()}


def test_files_and_coco_structure(scene: Path) -> None:
    coco = load(scene / "annotations.json")
    assert [c["id"] for c in coco["categories"]] == [1, 2, 3]
    assert len(coco["images"]) == FRAMES
    for index, image in enumerate(coco["images"]):
        assert image["file_name"] == f"frames/{index:06d}.jpg"
        assert (image["width"], image["height"]) == (WIDTH, HEIGHT)
        assert cv2.imread(str(scene / image["file_name"])).shape == (HEIGHT, WIDTH, 3)
    assert len(coco["annotations"]) > 10 * FRAMES
    assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"])
    image_ids = {image["id"] for image in coco["images"]}
    for annotation in coco["annotations"]:
        x, y, w, h = annotation["bbox"]
        assert w >= 1 and h >= 1 and x >= 0 and y >= 0
        assert x + w <= WIDTH and y + h <= HEIGHT
        assert annotation["area"] == w * h
        assert annotation["iscrowd"] == 0
        assert annotation["category_id"] in (1, 2, 3)
        assert annotation["image_id"] in image_ids
    video = cv2.VideoCapture(str(scene / "scene.mp4"))
    try:
        assert video.isOpened()
        assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
        assert (video.get(cv2.CAP_PROP_FRAME_WIDTH), video.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (
            WIDTH,
            HEIGHT,
        )
    finally:
        video.release()


def test_perspective_small_dense_far_large_sparse_near(scene: Path) -> None:
    boxes = np.concatenate(list(boxes_by_frame(load(scene / "annotations.json")).values()))
    centre_y = boxes[:, 1] + boxes[:, 3] / 2
    order = np.argsort(centre_y)
    third = len(order) // 3
    top, bottom = boxes[order[:third]], boxes[order[-third:]]
    assert top[:, 3].mean() * 2.5 < bottom[:, 3].mean()
    assert (centre_y < HEIGHT / 2).sum() > (centre_y >= HEIGHT / 2).sum()
    # size grows with the row: tiny near the horizon, large near the bottom (scaled to 270 rows)
    sides = np.sqrt(boxes[:, 2] * boxes[:, 3])
    assert np.median(sides[order[:third]]) < 8
    assert sides.max() > 30


def test_objects_move_enter_and_leave(scene: Path) -> None:
    coco = load(scene / "annotations.json")
    first, last = coco["images"][0]["id"], coco["images"][-1]["id"]
    tracks: dict[int, dict[int, list]] = defaultdict(dict)
    for annotation in coco["annotations"]:
        tracks[annotation["track_id"]][annotation["image_id"]] = annotation["bbox"]
    both = [t for t in tracks.values() if first in t and last in t]
    moved = [t for t in both if t[first] != t[last]]
    assert len(both) > 5 and len(moved) >= len(both) / 2
    assert any(first not in t for t in tracks.values())  # some track entered (or emerged)


def test_same_seed_same_files_other_seed_differs(tmp_path: Path) -> None:
    def make(name: str, seed: int) -> Path:
        return synth_scenes(
            tmp_path / name, num_frames=2, width=160, height=96, seed=seed, video=False
        )

    a, b, c = make("a", 3), make("b", 3), make("c", 4)
    assert (a / "annotations.json").read_bytes() == (b / "annotations.json").read_bytes()
    assert (a / "frames/000000.jpg").read_bytes() == (b / "frames/000000.jpg").read_bytes()
    assert (a / "frames/000000.jpg").read_bytes() != (c / "frames/000000.jpg").read_bytes()
    assert not (a / "scene.mp4").exists()


def test_complete_folder_is_reused_and_other_parameters_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = synth_scenes(tmp_path / "s", num_frames=1, width=128, height=72, video=False)

    def fail(folder: Path, params: dict) -> None:
        raise AssertionError("regenerated")

    monkeypatch.setattr(scenes, "_write_scene", fail)
    assert synth_scenes(out, num_frames=1, width=128, height=72, video=False) == out
    with pytest.raises(DatasetError, match="other parameters"):
        synth_scenes(out, num_frames=2, width=128, height=72, video=False)
    (tmp_path / "junk").mkdir()
    with pytest.raises(DatasetError, match="not a complete"):
        synth_scenes(tmp_path / "junk", num_frames=1, width=128, height=72, video=False)


def test_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(folder: Path, params: dict) -> None:
        (folder / "frames").mkdir()
        raise RuntimeError("disk full")

    monkeypatch.setattr(scenes, "_write_scene", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        synth_scenes(tmp_path / "s", num_frames=1, width=128, height=72, video=False)
    assert list(tmp_path.iterdir()) == []


def test_invalid_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_classes"):
        synth_scenes(tmp_path / "s", num_classes=5)
    with pytest.raises(ValueError, match="num_frames"):
        synth_scenes(tmp_path / "s", num_frames=0)
    assert not (tmp_path / "s").exists()


def test_split_history_partitions_frames(scene: Path) -> None:
    history_path, test_path = split_history(scene, 3)
    coco, history, test = (load(p) for p in (scene / "annotations.json", history_path, test_path))
    assert [i["id"] for i in history["images"]] == [i["id"] for i in coco["images"][:3]]
    assert [i["id"] for i in test["images"]] == [i["id"] for i in coco["images"][3:]]
    ids = sorted(a["id"] for a in history["annotations"] + test["annotations"])
    assert ids == sorted(a["id"] for a in coco["annotations"])
    history_images = {i["id"] for i in history["images"]}
    assert all(a["image_id"] in history_images for a in history["annotations"])
    assert history["categories"] == test["categories"] == coco["categories"]
    distribution = from_coco(history_path, (WIDTH, HEIGHT))
    assert len(distribution) == len(history["annotations"]) and distribution.num_frames == 3


def test_split_history_bad_input(tmp_path: Path, scene: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"annotations\.json"):
        split_history(tmp_path, 1)
    with pytest.raises(DatasetError, match="history_frames"):
        split_history(scene, FRAMES)
    (tmp_path / "annotations.json").write_text("{")
    with pytest.raises(DatasetError, match="not a JSON"):
        split_history(tmp_path, 1)
