"""Reading the re-identification meta CSV and fitting its boxes to the frames."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from neo.data.problems import DatasetError
from neo.data.reid.meta import REQUIRED_COLUMNS, fit_boxes, frame_size, read_meta

WIDTH, HEIGHT = 96, 64


def write_frames(root: Path, names: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        cv2.imwrite(str(root / name), rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8))


def write_csv(path: Path, rows: list[dict], columns=REQUIRED_COLUMNS) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def box(x, y, w, h, label=1, quarter="Q1", angle="side", session=1, frame=7, **extra) -> dict:
    return dict(
        quarter=quarter, angle=angle, session=session, frame=frame, x=x, y=y, w=w, h=h,
        label_id=label, **extra,
    )  # fmt: skip


def test_read_meta_parses_rows_into_records(tmp_path):
    rows = [box(1.4, 2.6, 10, 20, label=3), box(5, 5, 8, 8, label="", frame=8, angle="top")]
    rows.append(box(0, 0, 4, 4, label=-1, session=2))
    meta = write_csv(tmp_path / "m.csv", rows, [*REQUIRED_COLUMNS, "note"])
    records = read_meta(meta, tmp_path / "img")
    assert [(r.x, r.y, r.w, r.h, r.label, r.row) for r in records] == [
        (1, 3, 10, 20, 3, 0),
        (5, 5, 8, 8, -1, 1),
        (0, 0, 4, 4, -1, 2),
    ]
    assert records[0].frame_path == str(tmp_path / "img" / "Q1__side__01__07.jpg")
    assert records[1].frame_path.endswith("Q1__top__01__08.jpg")
    assert records[2].session == 2 and records[2].kind == "player"


def test_missing_file_and_missing_columns_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        read_meta(tmp_path / "nope.csv", tmp_path)
    meta = write_csv(tmp_path / "m.csv", [box(0, 0, 4, 4)], ["quarter", "angle", "x", "y", "w"])
    with pytest.raises(
        DatasetError, match=r"m\.csv: missing column\(s\) session, frame, h, label_id"
    ):
        read_meta(meta, tmp_path)


def test_non_numeric_value_names_line_and_column(tmp_path):
    meta = write_csv(tmp_path / "m.csv", [box(0, 0, 4, 4), box(0, "abc", 4, 4)])
    with pytest.raises(DatasetError, match=r"m\.csv: line 3: column y: 'abc' is not a number"):
        read_meta(meta, tmp_path)
    meta = write_csv(tmp_path / "m.csv", [box(0, 0, 4, 4, session=1.5)])
    with pytest.raises(DatasetError, match="line 2: column session"):
        read_meta(meta, tmp_path)


def test_empty_box_is_an_error(tmp_path):
    meta = write_csv(tmp_path / "m.csv", [box(0, 0, 0, 4)])
    with pytest.raises(DatasetError, match=r"m\.csv: line 2: .*must be > 0"):
        read_meta(meta, tmp_path)


@pytest.mark.parametrize(
    ("quarter", "pattern"),
    [("..", "{quarter}/{angle}.jpg"), ("Q1", "../{quarter}.jpg"), ("Q1", "/etc/{quarter}.jpg")],
)
def test_frame_path_escaping_the_root_is_refused(tmp_path, quarter, pattern):
    meta = write_csv(tmp_path / "m.csv", [box(0, 0, 4, 4, quarter=quarter)])
    with pytest.raises(DatasetError, match="leaves the data folder"):
        read_meta(meta, tmp_path / "img", pattern)


def test_subfolder_pattern_inside_the_root_is_allowed(tmp_path):
    meta = write_csv(tmp_path / "m.csv", [box(0, 0, 4, 4)])
    records = read_meta(meta, tmp_path, "{quarter}/x/../{angle}_{frame}.jpg")
    assert records[0].frame_path == str(tmp_path / "Q1/x/../side_7.jpg")


def test_fit_boxes_drops_or_clips_with_one_counted_warning(tmp_path):
    write_frames(tmp_path, ["Q1__side__01__07.jpg"])
    rows = [box(0, 0, 10, 10), box(90, 0, 10, 10), box(-5, 60, 10, 10), box(200, 0, 10, 10)]
    records = read_meta(write_csv(tmp_path / "train_meta.csv", rows), tmp_path)
    assert frame_size(records[0].frame_path) == (WIDTH, HEIGHT)
    with pytest.warns(UserWarning, match="train_meta.csv: 3 boxes past the frame dropped") as rec:
        kept = fit_boxes(records, "drop", "train_meta.csv")
    assert len(rec) == 1 and kept == records[:1]
    with pytest.warns(UserWarning, match=r"3 boxes past the frame clipped \(bbox_mode clip\)"):
        clipped = fit_boxes(records, "clip", "train_meta.csv")
    assert [(r.x, r.y, r.w, r.h, r.row) for r in clipped] == [
        (0, 0, 10, 10, 0),
        (90, 0, 6, 10, 1),
        (0, 60, 5, 4, 2),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fit_boxes(records[:1], "clip", "m") == records[:1]


def test_missing_frame_files_are_counted(tmp_path):
    write_frames(tmp_path, ["Q1__side__01__07.jpg"])
    rows = [box(0, 0, 4, 4), box(0, 0, 4, 4, frame=8), box(0, 0, 4, 4, frame=9)]
    records = read_meta(write_csv(tmp_path / "m.csv", rows), tmp_path)
    with pytest.raises(DatasetError, match=r"m.csv: frame file missing: .*__08.jpg \(2 of 3"):
        fit_boxes(records, "drop", "m.csv")
