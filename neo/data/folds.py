"""Train/val/test splits grouped by a key (e.g. the recording), with deterministic k folds.

A group (all chunks of one recording) always lands in exactly one of train, val and test, so no
split sees a neighbour of an image it is evaluated on. The held-out test groups are drawn first,
from ``split_seed`` alone, and are never part of any fold; the remaining groups are dealt into
``num_folds`` folds balanced by sample count (largest groups first, each to the fold with the
fewest samples so far, ties to the lower fold). Fold ``k`` validates on fold ``k`` and trains on
the others. ``num_folds`` 0 or 1 means one plain split with about ``val_fraction`` of the groups
for validation.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from neo.data.problems import DatasetError


@dataclass(frozen=True)
class GroupSplit:
    """Group names of each split, sorted."""

    train: list[str]
    val: list[str]
    test: list[str]

    def of(self, split: str) -> list[str]:
        """The groups of ``"train"``, ``"val"`` or ``"test"``."""
        return {"train": self.train, "val": self.val, "test": self.test}[split]


def held_out_groups(groups: Sequence[str], test_fraction: float, seed: int) -> list[str]:
    """The test groups: ``round(test_fraction · G)`` of them (at least one when the fraction > 0).

    Args:
        groups: Unique group names.
        test_fraction: Fraction of groups held out, in [0, 1).
        seed: Split seed.

    Returns:
        Sorted names of the held-out groups.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    names = sorted(set(groups))
    if test_fraction == 0.0:
        return []
    count = min(max(1, round(test_fraction * len(names))), len(names) - 2)
    if count < 1:
        raise DatasetError(
            f"{len(names)} recording(s) cannot give a held-out test split and train/val splits; "
            "set test_fraction: 0 or add recordings"
        )
    rng = random.Random(f"test-{seed}")
    return sorted(rng.sample(names, count))


def fold_assignment(sizes: dict[str, int], num_folds: int, seed: int) -> dict[str, int]:
    """Fold index of every group, balanced by sample count.

    Args:
        sizes: Samples per group.
        num_folds: Number of folds (>= 2).
        seed: Split seed (breaks ties between equally sized groups).

    Returns:
        ``{group: fold}``.
    """
    if len(sizes) < num_folds:
        raise DatasetError(
            f"{num_folds} folds need at least {num_folds} recordings outside the test split, "
            f"found {len(sizes)}; lower num_folds or add recordings"
        )
    names = sorted(sizes)
    random.Random(f"folds-{seed}").shuffle(names)
    names.sort(key=lambda g: -sizes[g])  # stable: shuffled order breaks ties
    load = [0] * num_folds
    assignment = {}
    for name in names:
        fold = min(range(num_folds), key=lambda f: (load[f], f))
        assignment[name] = fold
        load[fold] += sizes[name]
    return assignment


def grouped_split(
    groups: Sequence[str],
    fold: int = 0,
    num_folds: int = 5,
    test_fraction: float = 0.15,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> GroupSplit:
    """Split samples by group into train, val and test (see module docstring).

    Args:
        groups: Group name of every sample (one entry per sample).
        fold: Fold used for validation, ``0 <= fold < num_folds``.
        num_folds: Number of folds; 0 or 1 for one plain train/val split.
        test_fraction: Fraction of groups held out for testing.
        val_fraction: Fraction of non-test groups validated on when there are no folds.
        seed: Split seed.

    Returns:
        The groups of each split.
    """
    sizes = Counter(groups)
    test = held_out_groups(list(sizes), test_fraction, seed)
    pool = {g: n for g, n in sizes.items() if g not in set(test)}
    if num_folds < 0:
        raise ValueError(f"num_folds must be >= 0, got {num_folds}")
    if num_folds <= 1:
        if fold != 0:
            raise ValueError(f"fold must be 0 without k folds, got {fold}")
        if len(pool) < 2:
            raise DatasetError(f"need at least 2 recordings for train and val, found {len(pool)}")
        names = sorted(pool)
        random.Random(f"val-{seed}").shuffle(names)
        count = min(max(1, round(val_fraction * len(names))), len(names) - 1)
        val = set(names[:count])
    else:
        if not 0 <= fold < num_folds:
            raise ValueError(f"fold must be in [0, {num_folds}), got {fold}")
        assignment = fold_assignment(pool, num_folds, seed)
        val = {g for g, f in assignment.items() if f == fold}
    return GroupSplit(
        train=sorted(g for g in pool if g not in val), val=sorted(val), test=list(test)
    )
