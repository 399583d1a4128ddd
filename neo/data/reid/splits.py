"""Open-set train/val splits for re-identification, grouped and in k folds.

Boxes are grouped (by default all angles of one quarter and session) and the groups dealt into
folds with :func:`neo.data.folds.grouped_split`. Each fold also holds out some identities: their
boxes in the validation groups must be predicted as unknown (-1), and their boxes in the training
groups are left out so the model never sees them. Unlabelled boxes and negatives are unknown too.
"""

from __future__ import annotations

import random
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal, NamedTuple

from neo.data.folds import grouped_split
from neo.data.problems import DatasetError
from neo.data.reid.meta import DEFAULT_FRAME_PATTERN, fit_boxes, read_meta
from neo.data.reid.negatives import load_negatives_from_csv, missing_negatives_message
from neo.data.reid.records import PLAYER, UNKNOWN, BoxRecord

DEFAULT_NEGATIVES_NAME = "train_negatives.csv"


class OpenSetSplit(NamedTuple):
    """The boxes of one fold of an open-set split.

    Attributes:
        known: Every box of a known identity, ``split`` ``train`` or ``val``.
        unknown: Boxes to predict as -1 (held-out identities in the validation groups,
            unlabelled boxes, negatives), label -1, ``split`` ``train`` or ``val``.
        known_labels: Sorted known identities.
        unknown_labels: Sorted held-out identities.
    """

    known: list[BoxRecord]
    unknown: list[BoxRecord]
    known_labels: list[int]
    unknown_labels: list[int]


def held_out_identities(
    identities: Sequence[int], unknown_fraction: float, fold_idx: int, seed: int
) -> list[int]:
    """The identities fold ``fold_idx`` holds out: a window of a seeded shuffle, taken cyclically.

    Args:
        identities: Labelled identities.
        unknown_fraction: Fraction of identities held out, in [0, 1).
        fold_idx: Fold; fold ``k`` holds out positions ``[k·m, (k+1)·m)`` of the shuffle.
        seed: Split seed.

    Returns:
        Sorted held-out identities (``round(fraction · N)``, at least one when fraction > 0).
    """
    if not 0.0 <= unknown_fraction < 1.0:
        raise ValueError(f"unknown_fraction must be in [0, 1), got {unknown_fraction}")
    order = sorted(set(identities))
    if unknown_fraction == 0.0 or not order:
        return []
    random.Random(f"unknown-{seed}").shuffle(order)
    count = min(max(1, round(unknown_fraction * len(order))), len(order))
    start = fold_idx * count
    return sorted({order[(start + i) % len(order)] for i in range(count)})


def build_open_set_splits(
    records: Sequence[BoxRecord],
    negatives: Sequence[BoxRecord] | None = None,
    unknown_fraction: float = 0.2,
    n_folds: int = 5,
    fold_idx: int = 0,
    group_columns: Sequence[str] = ("quarter", "session"),
    seed: int = 0,
    source: str = "meta",
) -> OpenSetSplit:
    """Splits player boxes (and negatives) into known and unknown, train and val, for one fold.

    Args:
        records: Player boxes (label -1 for unlabelled ones).
        negatives: Negative boxes (background, partial), unknown by definition.
        unknown_fraction: Fraction of the labelled identities held out as unknown.
        n_folds: Number of folds of groups; 0 or 1 for one plain split.
        fold_idx: The fold validated on.
        group_columns: Meta columns whose values make a group (never split across train/val).
        seed: Split seed (groups and held-out identities).
        source: Name of the data (for messages).

    Returns:
        The known and unknown boxes with their split, and the known and held-out identities.
    """
    players = [r for r in records if r.kind == PLAYER]
    groups = [r.group(group_columns) for r in players]
    fold_split = grouped_split(
        groups, fold=fold_idx, num_folds=n_folds, test_fraction=0.0, seed=seed
    )
    split_of = {g: "train" for g in fold_split.train} | {g: "val" for g in fold_split.val}
    labelled = sorted({r.label for r in players if r.label >= 0})
    if not labelled:
        raise DatasetError(f"{source}: no labelled boxes (label_id >= 0); cannot make a split")
    held = set(held_out_identities(labelled, unknown_fraction, fold_idx, seed))

    train_counts = Counter(
        r.label for r, g in zip(players, groups) if r.label >= 0 and split_of[g] == "train"
    )
    unseen = {i for i in labelled if i not in held and train_counts[i] == 0}
    if unseen:
        warnings.warn(
            f"{source}: {len(unseen)} identities have no box in the train groups of fold "
            f"{fold_idx}; treated as unknown",
            stacklevel=2,
        )
    unknown_ids = held | unseen
    single = sum(1 for i in labelled if i not in unknown_ids and train_counts[i] == 1)
    if single:
        warnings.warn(
            f"{source}: {single} identities have a single training image in fold {fold_idx}",
            stacklevel=2,
        )

    known: list[BoxRecord] = []
    unknown: list[BoxRecord] = []
    for record, group in zip(players, groups):
        split = split_of[group]
        if record.label < 0:
            unknown.append(replace(record, split=split))
        elif record.label not in unknown_ids:
            known.append(replace(record, split=split))
        elif split == "val":
            unknown.append(replace(record, label=UNKNOWN, split=split))
    outside = 0
    for record in negatives or ():
        split = split_of.get(record.group(group_columns))
        if split is None:
            outside += 1
            continue
        unknown.append(replace(record, label=UNKNOWN, split=split))
    if outside:
        warnings.warn(
            f"{source}: {outside} negatives in groups without player boxes dropped", stacklevel=2
        )
    _check_validation(known, unknown, fold_idx, source)
    return OpenSetSplit(known, unknown, sorted(set(labelled) - unknown_ids), sorted(unknown_ids))


def _check_validation(
    known: Sequence[BoxRecord], unknown: Sequence[BoxRecord], fold_idx: int, source: str
) -> None:
    if not any(r.split == "train" for r in known):
        raise DatasetError(
            f"{source}: no known-identity boxes in the train groups of fold {fold_idx}; "
            "lower unknown_fraction or add labelled boxes"
        )
    if not any(r.split == "val" for r in known):
        raise DatasetError(
            f"{source}: no known-identity boxes in the validation groups of fold {fold_idx}; "
            "lower unknown_fraction, change n_folds or add labelled boxes"
        )
    if not any(r.split == "val" for r in unknown):
        raise DatasetError(
            f"{source}: no unknown samples in the validation groups of fold {fold_idx}; "
            "raise unknown_fraction or add negatives/unlabelled boxes"
        )


def build_open_set_splits_cv(
    train_meta_path: Path,
    img_root: Path,
    bbox_mode: Literal["drop", "clip"] = "drop",
    n_folds: int = 5,
    fold_idx: int = 0,
    use_precomputed_negatives: bool = True,
    neg_csv_path: Path | None = None,
    unknown_fraction: float = 0.2,
    seed: int = 0,
    group_columns: Sequence[str] = ("quarter", "session"),
    frame_pattern: str = DEFAULT_FRAME_PATTERN,
) -> OpenSetSplit:
    """Reads a meta CSV (and its negatives) and splits it with :func:`build_open_set_splits`.

    Args:
        train_meta_path: The meta CSV.
        img_root: Folder of the full frames.
        bbox_mode: ``drop`` boxes past the frame or ``clip`` them.
        n_folds: Number of folds of groups; 0 or 1 for one plain split.
        fold_idx: The fold validated on.
        use_precomputed_negatives: Whether to add the negatives of ``neg_csv_path``.
        neg_csv_path: Negatives CSV; None for ``train_negatives.csv`` beside the meta CSV.
        unknown_fraction: Fraction of the labelled identities held out as unknown.
        seed: Split seed.
        group_columns: Meta columns whose values make a group.
        frame_pattern: File name of a frame from its ``quarter, angle, session, frame``.

    Returns:
        The split of fold ``fold_idx``.
    """
    meta = Path(train_meta_path)
    records = fit_boxes(read_meta(meta, Path(img_root), frame_pattern), bbox_mode, meta.name)
    negatives = None
    if use_precomputed_negatives:
        path = (
            Path(neg_csv_path) if neg_csv_path is not None else meta.parent / DEFAULT_NEGATIVES_NAME
        )
        if not path.is_file():
            raise FileNotFoundError(missing_negatives_message(path, meta, Path(img_root)))
        negatives = load_negatives_from_csv(path, Path(img_root), frame_pattern)
    return build_open_set_splits(
        records, negatives, unknown_fraction, n_folds, fold_idx, group_columns, seed, meta.name
    )
