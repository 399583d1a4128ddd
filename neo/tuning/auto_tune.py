"""Training hyper-parameters from the amount of labelled data (the G20 heuristics table)."""

from typing import NamedTuple


class TuneRow(NamedTuple):
    """One row of the table: applies to ``lower <= num_labeled_samples < upper``."""

    lower: int
    upper: float
    epochs: int
    k_folds: int
    batch_size: int
    learning_rate: float
    early_stop_patience: int


HEURISTICS: tuple[TuneRow, ...] = (
    TuneRow(0, 50, 100, 0, 4, 1e-4, 5),
    TuneRow(50, 100, 75, 3, 4, 1e-4, 5),
    TuneRow(100, 200, 75, 5, 8, 3e-4, 7),
    TuneRow(200, 500, 50, 5, 8, 3e-4, 10),
    TuneRow(500, 2000, 30, 7, 16, 3e-4, 12),
    TuneRow(2000, float("inf"), 20, 10, 16, 3e-4, 15),
)
SECONDS_PER_SAMPLE_EPOCH = 0.02


def auto_tune(num_labeled_samples: int, num_classes: int) -> dict:
    """Recommended training settings for a dataset of ``num_labeled_samples`` labelled images.

    :data:`HEURISTICS` is the seed's table, read as half-open ranges (``50-100`` means
    ``50 <= n < 100``, ``2000+`` means ``n >= 2000``; "none" folds is 0, i.e. one train/val split).
    The seed's reference code disagrees with its own table, and the table wins:

    - k-folds: the code switches at 30 / 100 / 300 / 1000 samples (0 / 3 / 5 / 7 / 10 folds); the
      table at 50 / 100 / 500 / 2000 (so e.g. 30-49 samples give 0 folds here, not 3, and 300-499
      give 5, not 7).
    - early-stop patience: the code computes ``clamp(n // 20, 5, 15)`` (100 samples -> 5, 500 ->
      15); the table gives 5 / 5 / 7 / 10 / 12 / 15 per row.
    - epochs, batch size and learning rate agree.

    ``estimated_time_min`` is the seed's estimate for one training run,
    ``epochs · num_labeled_samples · 0.02 s / 60``; cross-validation multiplies it by ``k_folds``.
    ``num_classes`` does not change the table; it is validated so callers pass real counts.

    Args:
        num_labeled_samples: Number of labelled images (>= 0).
        num_classes: Number of object classes (>= 1).

    Returns:
        Dict with ``epochs``, ``k_folds``, ``batch_size``, ``learning_rate``,
        ``early_stop_patience`` and ``estimated_time_min``.

    Raises:
        ValueError: Negative sample count, fewer than one class, or non-integer input.
    """
    for name, value in (("num_labeled_samples", num_labeled_samples), ("num_classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if num_labeled_samples < 0:
        raise ValueError(f"num_labeled_samples must be >= 0, got {num_labeled_samples}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    row = next(r for r in HEURISTICS if r.lower <= num_labeled_samples < r.upper)
    return {
        "epochs": row.epochs,
        "k_folds": row.k_folds,
        "batch_size": row.batch_size,
        "learning_rate": row.learning_rate,
        "early_stop_patience": row.early_stop_patience,
        "estimated_time_min": row.epochs * num_labeled_samples * SECONDS_PER_SAMPLE_EPOCH / 60,
    }
