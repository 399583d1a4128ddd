import itertools

import pytest

from neo.tuning import HEURISTICS, auto_tune

# (n, epochs, k_folds, batch, lr, patience) straight from the seed's table
CASES = [
    (0, 100, 0, 4, 1e-4, 5),
    (49, 100, 0, 4, 1e-4, 5),
    (50, 75, 3, 4, 1e-4, 5),
    (99, 75, 3, 4, 1e-4, 5),
    (100, 75, 5, 8, 3e-4, 7),
    (101, 75, 5, 8, 3e-4, 7),
    (199, 75, 5, 8, 3e-4, 7),
    (200, 50, 5, 8, 3e-4, 10),
    (499, 50, 5, 8, 3e-4, 10),
    (500, 30, 7, 16, 3e-4, 12),
    (1999, 30, 7, 16, 3e-4, 12),
    (2000, 20, 10, 16, 3e-4, 15),
    (10**6, 20, 10, 16, 3e-4, 15),
]


@pytest.mark.parametrize(("n", "epochs", "folds", "batch", "lr", "patience"), CASES)
def test_table_rows_and_boundaries(n, epochs, folds, batch, lr, patience):
    got = auto_tune(n, 3)
    assert got["epochs"] == epochs
    assert got["k_folds"] == folds
    assert got["batch_size"] == batch
    assert got["learning_rate"] == pytest.approx(lr)
    assert got["early_stop_patience"] == patience
    assert got["estimated_time_min"] == pytest.approx(epochs * n * 0.02 / 60)


def test_table_wins_over_seed_code():
    # seed code: 30 samples -> 3 folds, 300 -> 7 folds, 500 -> patience 15; the table says otherwise
    assert auto_tune(30, 1)["k_folds"] == 0
    assert auto_tune(300, 1)["k_folds"] == 5
    assert auto_tune(500, 1)["early_stop_patience"] == 12


def test_table_is_contiguous():
    assert HEURISTICS[0].lower == 0
    for prev, row in itertools.pairwise(HEURISTICS):
        assert prev.upper == row.lower
    assert HEURISTICS[-1].upper == float("inf")


def test_keys():
    assert set(auto_tune(10, 2)) == {
        "epochs",
        "k_folds",
        "batch_size",
        "learning_rate",
        "early_stop_patience",
        "estimated_time_min",
    }


@pytest.mark.parametrize(("n", "classes"), [(-1, 2), (10, 0), (10, -3), (1.5, 2), (True, 2)])
def test_bad_input(n, classes):
    with pytest.raises(ValueError):
        auto_tune(n, classes)
