"""Recording-grouped train/val/test splits and k folds."""

from __future__ import annotations

import pytest

from neo.data.folds import grouped_split
from neo.data.problems import DatasetError

# 12 recordings with 1..4 chunks each
GROUPS = [f"rec{r}" for r in range(12) for _ in range(1 + r % 4)]


def test_folds_partition_the_non_test_recordings_without_leakage():
    splits = [
        grouped_split(GROUPS, fold=k, num_folds=3, test_fraction=0.2, seed=7) for k in range(3)
    ]
    test = set(splits[0].test)
    assert len(test) == 2  # round(0.2 * 12)
    vals = []
    for split in splits:
        train, val = set(split.train), set(split.val)
        assert split.test == splits[0].test, "the held-out test split must not depend on the fold"
        assert not train & val and not train & test and not val & test
        assert train | val | test == set(GROUPS)
        vals.append(val)
    assert set().union(*vals) == set(GROUPS) - test
    assert sum(len(v) for v in vals) == len(set(GROUPS) - test)  # each recording validated once


def test_folds_are_deterministic_and_depend_on_the_seed():
    a = grouped_split(GROUPS, fold=1, num_folds=4, seed=3)
    assert a == grouped_split(list(GROUPS), fold=1, num_folds=4, seed=3)
    others = [grouped_split(GROUPS, fold=1, num_folds=4, seed=s) for s in range(4, 10)]
    assert any(o != a for o in others)


def test_folds_are_balanced_by_chunk_count():
    counts = {g: GROUPS.count(g) for g in set(GROUPS)}
    sizes = [sum(counts[g] for g in grouped_split(GROUPS, k, 3, 0.0, seed=0).val) for k in range(3)]
    assert max(sizes) - min(sizes) <= 1


def test_plain_split_and_errors():
    split = grouped_split(GROUPS, fold=0, num_folds=0, test_fraction=0.15, val_fraction=0.25)
    assert len(split.val) == round(0.25 * 10) and len(split.test) == 2
    assert grouped_split(GROUPS, 0, 1).val  # 1 fold also means a plain split
    with pytest.raises(DatasetError, match="5 folds need at least 5 recordings"):
        grouped_split(["a", "b", "c", "d"], fold=0, num_folds=5, test_fraction=0.0)
    with pytest.raises(ValueError, match="fold must be in"):
        grouped_split(GROUPS, fold=3, num_folds=3)
