"""Background and partial negatives: IoU limits, determinism, the CSV and its errors."""

from __future__ import annotations

import csv
import random
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from neo.data.problems import DatasetError
from neo.data.reid.meta import REQUIRED_COLUMNS, fit_boxes, read_meta
from neo.data.reid.negatives import (
    NEGATIVE_COLUMNS,
    generate_negatives,
    iou_matrix,
    load_negatives_from_csv,
    negatives,
)

WIDTH, HEIGHT = 96, 64


def write_dataset(root: Path) -> Path:
    """6 black frames with 2-3 players each and a meta CSV."""
    images = root / "img"
    images.mkdir(parents=True)
    rows = []
    for frame in range(6):
        cv2.imwrite(str(images / f"Q1__side__01__{frame:02d}.jpg"), np.zeros((HEIGHT, WIDTH, 3)))
        for label in range(2 + frame % 2):
            rows.append(["Q1", "side", 1, frame, 4 + 30 * label, 10 + frame, 14, 28, label])
    meta = root / "train_meta.csv"
    with open(meta, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(REQUIRED_COLUMNS)
        writer.writerows(rows)
    return meta


def players_of(meta: Path) -> list:
    return fit_boxes(read_meta(meta, meta.parent / "img"), "drop", meta.name)


def xywh(records) -> np.ndarray:
    return np.array([(r.x, r.y, r.w, r.h) for r in records])


def test_iou_matrix():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 10, 10]])
    ious = iou_matrix(boxes, np.array([[0, 0, 10, 10], [20, 20, 5, 5]]))
    np.testing.assert_allclose(ious, [[1.0, 0.0], [50 / 150, 0.0]])


def test_negatives_respect_their_iou_limits_and_the_frame(tmp_path):
    players = players_of(write_dataset(tmp_path))
    boxes = generate_negatives(players, num_bg_per_frame=2, num_partial_per_box=2, seed=3)
    background = [b for b in boxes if b.kind == "background"]
    partial = [b for b in boxes if b.kind == "partial"]
    assert len(background) == 12 and len(partial) == 2 * len(players)
    by_row = {p.row: p for p in players}
    for box in boxes:
        assert box.label == -1
        assert box.x >= 0 and box.y >= 0 and box.w > 0 and box.h > 0
        assert box.x + box.w <= WIDTH and box.y + box.h <= HEIGHT
        frame_players = [p for p in players if p.frame_path == box.frame_path]
        ious = iou_matrix(xywh([box]), xywh(frame_players))[0]
        if box.kind == "background":
            assert ious.max() <= 0.1 and box.row == -1
            assert (box.w, box.h) == (14, 28)
        else:
            own = iou_matrix(xywh([box]), xywh([by_row[box.row]]))[0, 0]
            assert 0.1 <= own <= 0.5 and ious.max() <= 0.5
            assert box.frame_path == by_row[box.row].frame_path


def test_negatives_are_deterministic_and_independent_of_order(tmp_path):
    players = players_of(write_dataset(tmp_path))
    first = generate_negatives(players, seed=5)
    shuffled = list(players)
    random.Random(0).shuffle(shuffled)
    assert sorted(generate_negatives(shuffled, seed=5), key=repr) == sorted(first, key=repr)
    assert generate_negatives(players, seed=6) != first


def test_unplaceable_negatives_give_one_counted_warning(tmp_path):
    players = players_of(write_dataset(tmp_path))
    frames = sorted({p.frame_path for p in players})[:2]
    # a player filling the frame leaves no room for a background box of its size
    full = [replace(players[0], frame_path=f, x=0, y=0, w=WIDTH, h=HEIGHT) for f in frames]
    with pytest.warns(UserWarning, match=r"negatives: 4 boxes could not be placed") as rec:
        boxes = generate_negatives(full, num_bg_per_frame=2, num_partial_per_box=1)
    assert len(rec) == 1
    assert [b.kind for b in boxes] == ["partial", "partial"]


def test_negatives_command_round_trips_through_the_csv(tmp_path, capsys):
    meta = write_dataset(tmp_path)
    output = tmp_path / "train_negatives.csv"
    assert negatives(meta, tmp_path / "img", output, num_bg_per_frame=1, seed=1) == output
    assert "6 background and" in capsys.readouterr().out
    with open(output) as f:
        assert next(csv.reader(f)) == list(NEGATIVE_COLUMNS)
    expected = generate_negatives(players_of(meta), seed=1)
    assert load_negatives_from_csv(output, tmp_path / "img") == expected
    relative = load_negatives_from_csv(output)
    assert relative[0].frame_path == Path(expected[0].frame_path).name


def test_missing_negatives_file_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"create it with `neo data negatives --train_meta"):
        load_negatives_from_csv(tmp_path / "train_negatives.csv")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (["Q1", "side", "1", "2", "3", "4", "5", "6", "ghost", "0"], r"line 3: kind 'ghost'"),
        (["Q1", "side", "1", "2", "x3", "4", "5", "6", "partial", "0"], r"line 3: column x: 'x3'"),
        (["Q1", "side", "1", "2", "3", "4", "0", "6", "partial", "0"], r"line 3: .*must be > 0"),
        (["Q1", "side", "1"], r"line 3: 3 values"),
    ],
)
def test_malformed_negatives_name_file_and_line(tmp_path, row, message):
    path = tmp_path / "neg.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(NEGATIVE_COLUMNS)
        writer.writerow(["Q1", "side", "1", "2", "3", "4", "5", "6", "background", "-1"])
        writer.writerow(row)
    with pytest.raises(DatasetError, match=rf"neg\.csv: {message}"):
        load_negatives_from_csv(path)


def test_negatives_csv_missing_column(tmp_path):
    path = tmp_path / "neg.csv"
    path.write_text("quarter,angle,session,frame,x,y,w,h,kind\n")
    with pytest.raises(DatasetError, match=r"neg\.csv: missing column\(s\) source_row"):
        load_negatives_from_csv(path)
