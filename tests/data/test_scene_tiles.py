"""Scene tiles: ground windows at every zoom, boxes clipped and scaled, a loadable data module."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neo.data.scene_tiles import (
    MIN_KEPT,
    DemoSceneDataModule,
    tile_annotations,
    tile_windows,
    write_scene_tiles,
)
from neo.remix.scenes import synth_scenes


def test_windows_have_the_zoomed_size_lie_in_the_frame_and_reach_below_the_horizon():
    rng = np.random.default_rng(0)
    windows = tile_windows(rng, (1920, 1080), 320.0, [1, 2, 4], tiles_per_zoom=5)
    assert len(windows) == 1 + 5 + 5
    assert windows[0] == (0, 0, 1920, 1080)
    for (x0, y0, x1, y1), zoom in zip(windows[1:], [2] * 5 + [4] * 5):
        assert (x1 - x0, y1 - y0) == (1920 // zoom, 1080 // zoom)
        assert x0 >= 0 and x1 <= 1920 and y0 >= 0 and y1 <= 1080
        assert y1 > 320  # every tile holds ground
    with pytest.raises(ValueError, match="at least 1"):
        tile_windows(rng, (1920, 1080), 320.0, [0.5], 1)


def test_boxes_are_clipped_shifted_scaled_and_dropped_when_mostly_outside_or_tiny():
    boxes = np.array(
        [
            [110, 110, 20, 20],  # inside
            [90, 100, 20, 20],  # half outside on the left: kept (0.5 >= MIN_KEPT), clipped
            [95, 100, 20, 20],  # a quarter outside: kept
            [85, 100, 20, 20],  # three quarters outside: dropped
            [150, 150, 3, 3],  # inside but 1.5 px once stored: dropped
        ],
        np.float64,
    )
    kept, index = tile_annotations(boxes, (100, 100, 300, 200), scale=0.5)
    assert MIN_KEPT <= 0.5
    assert index.tolist() == [0, 1, 2]
    np.testing.assert_allclose(kept[0], [5, 5, 10, 10])
    np.testing.assert_allclose(kept[1], [0, 0, 5, 10])
    np.testing.assert_allclose(kept[2], [0, 0, 7.5, 10])
    empty, none = tile_annotations(np.zeros((0, 4)), (0, 0, 10, 10), 1.0)
    assert empty.shape == (0, 4) and none.size == 0


def test_written_tiles_match_their_annotations_and_are_reused(tmp_path):
    scene = synth_scenes(tmp_path / "scene", num_frames=2, width=384, height=216, video=False)
    out = write_scene_tiles(tmp_path / "tiles", scene, zooms=[1, 2, 3], tiles_per_zoom=2,
                            tile_size=(192, 108))  # fmt: skip
    coco = json.loads((out / "annotations.json").read_text())
    assert len(coco["images"]) == 2 * (1 + 2 + 2)
    sizes = {(im["width"], im["height"]) for im in coco["images"]}
    assert sizes == {(192, 108), (128, 72)}  # larger crops shrunk to tile_size
    for ann in coco["annotations"]:
        image = coco["images"][ann["image_id"] - 1]
        x, y, w, h = ann["bbox"]
        assert x >= 0 and y >= 0 and x + w <= image["width"] + 1e-6
        assert y + h <= image["height"] + 1e-6 and min(w, h) >= 2
    assert len(coco["annotations"]) > 0
    mtime = (out / "annotations.json").stat().st_mtime_ns
    write_scene_tiles(tmp_path / "tiles", scene, zooms=[1, 2, 3], tiles_per_zoom=2,
                      tile_size=(192, 108))  # fmt: skip
    assert (out / "annotations.json").stat().st_mtime_ns == mtime


def test_demo_scene_data_module_serves_training_batches(tmp_path):
    module = DemoSceneDataModule(
        root=tmp_path / "tiles",
        frame_size=(384, 216),
        num_train_frames=2,
        num_val_frames=1,
        max_objects=20,
        zooms=[1, 2],
        tiles_per_zoom=1,
        tile_size=(192, 108),
        train_sizes=[(96, 160)],
        eval_size=(96, 160),
        batch_size=2,
        num_workers=0,
    )
    module.setup("fit")
    images, targets = next(iter(module.train_dataloader()))[:2]
    assert tuple(images.shape[-2:]) == (96, 160)
    assert len(targets) == 2
    assert (tmp_path / "tiles" / "val" / "annotations.json").is_file()
