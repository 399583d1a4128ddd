from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neo.data.problems import DatasetError
from neo.remix.distribution import ObjectDistribution, from_coco
from neo.remix.files import Block

VIEW = (200, 100)


def block(x1: int, y1: int, x2: int, y2: int) -> Block:
    return Block(x1, y1, x2, y2, "d")


def distribution() -> ObjectDistribution:
    boxes = np.array(
        [
            [10, 10, 20, 20],  # centre (20, 20)
            [90, 40, 20, 20],  # centre (100, 50): on the edge, belongs to the right half
            [150, 60, 40, 30],  # centre (170, 75)
            [190, 90, 30, 30],  # centre (205, 105) outside: clamped into the view
        ]
    )
    return ObjectDistribution(boxes, num_frames=2, view=VIEW)


def test_objects_in_by_centre_and_shares_sum_to_one() -> None:
    objects = distribution()
    left, right = block(0, 0, 100, 100), block(100, 0, 200, 100)
    assert objects.objects_in(left).tolist() == [True, False, False, False]
    assert objects.objects_in(right).tolist() == [False, True, True, True]
    rng = np.random.default_rng(0)
    xs = np.sort(rng.choice(np.arange(1, 200), 3, replace=False))
    tiles = [block(int(a), 0, int(b), 100) for a, b in zip([0, *xs], [*xs, 200])]
    assert sum(objects.share(t) for t in tiles) == pytest.approx(1.0)
    assert objects.share(left) == 0.25


def test_histogram_rescales_areas() -> None:
    objects = ObjectDistribution(np.array([[0, 0, 40, 40], [50, 50, 8, 8]]), 1, (100, 100))
    whole = block(0, 0, 100, 100)
    same = objects.histogram(whole, 1.0)
    assert same.sum() == pytest.approx(1.0)
    assert same[4] == 0.5 and same[1] == 0.5  # 1600 px² medium-1, 64 px² small-2
    shrunk = objects.histogram(whole, 0.5)  # areas / 4: 400 (small-4) and 16 (small-1)
    assert shrunk[3] == 0.5 and shrunk[0] == 0.5
    grown = objects.histogram(whole, 4.0)  # areas x 16: 25600 (large-1) and 1024 (medium-1)
    assert grown[8] == 0.5 and grown[4] == 0.5


def test_empty_block_and_empty_distribution() -> None:
    objects = distribution()
    assert objects.histogram(block(40, 0, 60, 10), 1.0).tolist() == [0.0] * 12
    empty = ObjectDistribution(np.zeros((0, 4)), 0, VIEW)
    assert empty.share(block(0, 0, 200, 100)) == 0.0
    assert empty.histogram(block(0, 0, 200, 100), 1.0).sum() == 0.0


def write_coco(path: Path, width: int, height: int) -> Path:
    data = {
        "images": [
            {"id": i, "width": width, "height": height, "file_name": f"{i}.jpg"} for i in (1, 2)
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "bbox": [10, 10, 20, 20], "category_id": 1, "iscrowd": 0},
            {"id": 2, "image_id": 2, "bbox": [150, 60, 40, 30], "category_id": 1, "iscrowd": 1},
        ],
        "categories": [{"id": 1, "name": "person"}],
    }
    path.write_text(json.dumps(data))
    return path


def test_from_coco(tmp_path: Path) -> None:
    objects = from_coco(write_coco(tmp_path / "oracle.json", *VIEW), VIEW)
    assert len(objects) == 2 and objects.num_frames == 2
    assert objects.share(block(0, 0, 100, 100)) == 0.5
    assert objects.areas.tolist() == [400.0, 1200.0]


def test_from_coco_errors(tmp_path: Path) -> None:
    with pytest.raises(
        DatasetError, match=r"oracle.json: image 1 is 1920x1080, not the 200x100 view"
    ):
        from_coco(write_coco(tmp_path / "oracle.json", 1920, 1080), VIEW)
    with pytest.raises(FileNotFoundError, match=r"missing\.json"):
        from_coco(tmp_path / "missing.json", VIEW)
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(DatasetError, match=r"list\.json: not a COCO file"):
        from_coco(tmp_path / "list.json", VIEW)
