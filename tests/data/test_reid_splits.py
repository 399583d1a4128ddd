"""Open-set splits: grouped folds, held-out identities, negatives and their errors."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from neo.data.problems import DatasetError
from neo.data.reid.meta import REQUIRED_COLUMNS
from neo.data.reid.records import BoxRecord
from neo.data.reid.splits import build_open_set_splits, build_open_set_splits_cv

GROUPS = [(q, s) for q in ("Q1", "Q2") for s in (1, 2, 3)]  # 6 quarter/session groups


def players(unlabelled: bool = True) -> list[BoxRecord]:
    """10 identities over 6 groups, 2 angles, 2 frames; one unlabelled box per group frame."""
    records = []
    for g, (quarter, session) in enumerate(GROUPS):
        for angle in ("side", "top"):
            for frame in range(2):
                labels = [(i + 2 * g) % 10 for i in range(6)] + ([-1] if unlabelled else [])
                for k, label in enumerate(labels):
                    records.append(
                        BoxRecord(
                            f"{quarter}__{angle}__{session:02d}__{frame:02d}.jpg",
                            10 * k,
                            0,
                            8,
                            16,
                            label=label,
                            quarter=quarter,
                            angle=angle,
                            session=session,
                            frame=frame,
                            row=len(records),
                        )
                    )
    return records


def group(record: BoxRecord) -> str:
    return record.group(("quarter", "session"))


def test_groups_never_straddle_and_held_out_ids_never_train():
    split = build_open_set_splits(players(), n_folds=3, fold_idx=1, seed=0)
    known, unknown = split.known, split.unknown
    train = {group(r) for r in known + unknown if r.split == "train"}
    val = {group(r) for r in known + unknown if r.split == "val"}
    assert train and val and not train & val
    assert {r.label for r in known} == set(split.known_labels)
    assert not set(split.known_labels) & set(split.unknown_labels)
    assert len(split.unknown_labels) == 2  # round(0.2 * 10)
    assert all(r.label == -1 for r in unknown)
    held_rows = {r.row for r in players() if r.label in split.unknown_labels}
    assert all(r.split == "val" for r in unknown if r.row in held_rows)  # none in train
    assert len(held_rows & {r.row for r in unknown}) > 0
    every = {r.row for r in known + unknown}
    left_out = {r.row for r in players()} - every
    assert left_out and left_out <= held_rows


def test_folds_hold_out_different_identities_deterministically():
    folds = [build_open_set_splits(players(), n_folds=3, fold_idx=k, seed=4) for k in range(3)]
    held = [tuple(f.unknown_labels) for f in folds]
    assert len(set(held)) == 3
    assert not set(held[0]) & set(held[1])
    again = build_open_set_splits(list(reversed(players())), n_folds=3, fold_idx=1, seed=4)
    assert again.unknown_labels == folds[1].unknown_labels
    assert sorted(again.known, key=repr) == sorted(folds[1].known, key=repr)


def test_negatives_join_the_unknown_with_their_group_split():
    negative = BoxRecord(
        "Q1__side__01__00.jpg",
        1,
        1,
        8,
        16,
        quarter="Q1",
        angle="side",
        session=1,
        kind="background",
    )
    split = build_open_set_splits(players(), [negative], n_folds=0, seed=0)
    found = [r for r in split.unknown if r.kind == "background"]
    assert len(found) == 1
    assert found[0].split == {r.split for r in split.known if group(r) == "Q1/1"}.pop()


def test_no_unknown_validation_sample_is_an_error():
    with pytest.raises(DatasetError, match="no unknown samples in the validation groups of fold 0"):
        build_open_set_splits(players(unlabelled=False), unknown_fraction=0.0, n_folds=3)


def test_single_training_image_identity_warns_once():
    records = players()
    first = build_open_set_splits(records, n_folds=3)
    index = next(
        i
        for i, r in enumerate(records)
        if r.label >= 0
        and r.split == ""
        and any(k.row == r.row and k.split == "train" for k in first.known)
    )
    records[index] = replace(records[index], label=42)  # same groups, so the same folds
    with pytest.warns(UserWarning, match=r"meta: 1 identities have a single training image") as rec:
        split = build_open_set_splits(records, n_folds=3)
    assert len(rec) == 1
    assert 42 in split.known_labels


def test_cv_reads_meta_and_negatives_and_names_a_missing_negatives_file(tmp_path):
    images = tmp_path / "img"
    images.mkdir()
    rows = []
    for r in players():
        rows.append([r.quarter, r.angle, r.session, r.frame, r.x, r.y, r.w, r.h, r.label])
        frame = images / Path(r.frame_path).name
        if not frame.exists():
            cv2.imwrite(str(frame), np.zeros((20, 80, 3), np.uint8))
    meta = tmp_path / "train_meta.csv"
    with open(meta, "w", newline="") as f:
        csv.writer(f).writerows([REQUIRED_COLUMNS, *rows])
    with pytest.raises(FileNotFoundError, match=r"train_negatives.csv not found; create it with"):
        build_open_set_splits_cv(meta, images, n_folds=3)
    (tmp_path / "train_negatives.csv").write_text(
        "quarter,angle,session,frame,x,y,w,h,kind,source_row\nQ2,top,3,1,2,2,8,8,partial,5\n"
    )
    split = build_open_set_splits_cv(meta, images, n_folds=3, fold_idx=2)
    assert split == build_open_set_splits(
        [
            BoxRecord(
                str(images / Path(r.frame_path).name),
                r.x,
                r.y,
                r.w,
                r.h,
                r.label,
                r.quarter,
                r.angle,
                r.session,
                r.frame,
                r.row,
            )
            for r in players()
        ],
        [
            BoxRecord(
                str(images / "Q2__top__03__01.jpg"), 2, 2, 8, 8, -1, "Q2", "top", 3, 1, 5, "partial"
            )
        ],
        n_folds=3,
        fold_idx=2,
        source="train_meta.csv",
    )
    assert any(r.kind == "partial" for r in split.unknown)


def test_identity_without_training_box_becomes_unknown():
    records = players()
    first = build_open_set_splits(records, n_folds=3)
    val_rows = {k.row for k in first.known if k.split == "val"}
    index = next(i for i, r in enumerate(records) if r.row in val_rows)
    records[index] = replace(records[index], label=77)
    with pytest.warns(UserWarning, match=r"1 identities have no box in the train groups of fold 0"):
        split = build_open_set_splits(records, n_folds=3)
    assert 77 in split.unknown_labels and 77 not in split.known_labels
    moved = [r for r in split.unknown if r.row == records[index].row]
    assert len(moved) == 1 and moved[0].label == -1 and moved[0].split == "val"
