"""Pre-cropping re-identification boxes: pixels, the crop table, resuming, workers."""

from __future__ import annotations

import csv
import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from neo.data.problems import DatasetError
from neo.data.reid.crops import (
    crop_name,
    crops,
    read_crop_table,
    write_crop_table,
    write_crops,
)
from neo.data.reid.meta import REQUIRED_COLUMNS, read_meta
from neo.data.reid.records import BoxRecord

WIDTH, HEIGHT = 96, 64
FRAMES = [(angle, frame) for angle in ("side", "top") for frame in range(1, 5)]  # 8 frames


def write_dataset(root: Path, edge_box: bool = True) -> Path:
    """8 noise JPEG frames with 3 players each and a meta CSV (and a box past the frame)."""
    images = root / "img"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for angle, frame in FRAMES:
        pixels = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        cv2.imwrite(str(images / f"Q1__{angle}__01__{frame:02d}.jpg"), pixels)
        for label in range(3):
            x, y = 5 + 25 * label, 3 + frame * 5
            rows.append(["Q1", angle, 1, frame, x, y, 16, 30, label])
    if edge_box:
        rows.append(["Q1", "side", 1, 1, 90, 0, 20, 20, -1])  # past the right edge
    meta = root / "train_meta.csv"
    with open(meta, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(REQUIRED_COLUMNS)
        writer.writerows(rows)
    return meta


def test_crop_name_is_unique_per_frame_kind_and_box():
    record = BoxRecord("img/Q1__side__01__07.jpg", 1, 2, 3, 4, quarter="Q1", angle="side",
                       session=1, frame=7)  # fmt: skip
    assert crop_name(record) == "Q1__side__01__07__player__1_2_3_4.jpg"
    assert crop_name(record, "png").endswith(".png")
    names = {
        crop_name(record),
        crop_name(replace(record, kind="partial")),
        crop_name(replace(record, x=2)),
        crop_name(replace(record, frame=8)),
        crop_name(replace(record, quarter="Q/1")),
        crop_name(replace(record, quarter="Q-1")),
    }
    assert len(names) == 6 and all("/" not in n for n in names)


def test_crops_are_the_frame_pixels_and_the_table_maps_back(tmp_path):
    meta = write_dataset(tmp_path)
    with pytest.warns(UserWarning, match="1 boxes past the frame dropped"):
        table = crops(meta, tmp_path / "img", tmp_path / "out", workers=1, image_format="png")
    assert table == tmp_path / "out" / "crops.csv"
    records = read_meta(meta, tmp_path / "img")
    back = read_crop_table(table)
    assert [r.row for r in back] == list(range(len(FRAMES) * 3))  # the dropped row is absent
    for record in back:
        source = records[record.row]
        assert (record.x, record.y, record.w, record.h, record.label, record.frame_path) == (
            source.x,
            source.y,
            source.w,
            source.h,
            source.label,
            source.frame_path,
        )
        frame = cv2.imread(record.frame_path)
        crop = cv2.imread(record.crop_path)
        assert record.crop_path.startswith(str(tmp_path / "out" / "images"))
        np.testing.assert_array_equal(
            crop, frame[record.y : record.y + 30, record.x : record.x + 16]
        )
    moved = read_crop_table(table, crop_root=tmp_path / "elsewhere")
    assert moved[0].crop_path.startswith(str(tmp_path / "elsewhere" / "images"))


def test_jpeg_crops_are_close_and_clip_mode_keeps_the_edge_box(tmp_path):
    meta = write_dataset(tmp_path)
    records = read_meta(meta, tmp_path / "img")
    with pytest.warns(UserWarning, match=r"1 boxes past the frame clipped \(bbox_mode clip\)"):
        written = write_crops(records, tmp_path / "c", bbox_mode="clip", workers=1)
    assert len(written) == len(records)
    edge = written[-1]
    assert (edge.x, edge.w) == (90, 6) and edge.crop_path.endswith("__90_0_6_20.jpg")
    crop = cv2.imread(edge.crop_path)
    frame = cv2.imread(edge.frame_path)
    assert crop.shape == (20, 6, 3)
    assert np.abs(crop.astype(int) - frame[0:20, 90:96]).mean() < 40  # JPEG q95 of noise


def test_second_run_writes_nothing_and_opens_no_frame(tmp_path, capsys):
    meta = write_dataset(tmp_path, edge_box=False)
    out = tmp_path / "out"
    crops(meta, tmp_path / "img", out, workers=1)
    assert "24 crops written, 0 already there, 0 boxes dropped" in capsys.readouterr().out
    files = sorted((out / "images").iterdir())
    past = 1_000_000_000
    for f in files:
        os.utime(f, ns=(past, past))
    # frames replaced by broken files: reading any of them would fail
    for frame in (tmp_path / "img").iterdir():
        frame.write_bytes(b"not an image")
    crops(meta, tmp_path / "img", out, workers=1)
    assert "0 crops written, 24 already there" in capsys.readouterr().out
    assert len(files) == 24 and all(f.stat().st_mtime_ns == past for f in files)
    (files[0]).unlink()
    with pytest.raises(DatasetError, match=r"train_meta.csv: frame .*__01.jpg cannot be read"):
        crops(meta, tmp_path / "img", out, workers=1)


def test_second_run_counts_existing_crops(tmp_path, capsys):
    meta = write_dataset(tmp_path)
    out = tmp_path / "out"
    with pytest.warns(UserWarning):
        crops(meta, tmp_path / "img", out, workers=1)
    (out / "images" / "Q1__top__01__02__player__5_13_16_30.jpg").unlink()
    capsys.readouterr()
    with pytest.warns(UserWarning):
        crops(meta, tmp_path / "img", out, workers=1)
    assert "1 crops written, 23 already there, 1 boxes dropped" in capsys.readouterr().out


def test_two_workers_give_the_same_files_as_one(tmp_path):
    meta = write_dataset(tmp_path)
    records = read_meta(meta, tmp_path / "img")
    with pytest.warns(UserWarning):
        one = write_crops(records, tmp_path / "one", workers=1)
    with pytest.warns(UserWarning):
        two = write_crops(records, tmp_path / "two", workers=2)
    assert [Path(r.crop_path).name for r in one] == [Path(r.crop_path).name for r in two]
    for a, b in zip(one, two):
        assert Path(a.crop_path).read_bytes() == Path(b.crop_path).read_bytes()


def test_crop_table_refuses_paths_leaving_the_root(tmp_path):
    record = BoxRecord("f.jpg", 0, 0, 2, 2, crop_path=str(tmp_path / "a.jpg"))
    table = tmp_path / "t" / "crops.csv"
    write_crop_table([record], table)
    with pytest.raises(DatasetError, match="leaves the data folder"):
        read_crop_table(table)
    write_crop_table([record], tmp_path / "crops.csv")
    assert read_crop_table(tmp_path / "crops.csv")[0] == record
