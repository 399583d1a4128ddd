"""Matplotlib figures of evaluation results (precision–recall curves, confusion matrices).

Figures are ``matplotlib.figure.Figure`` objects made without pyplot, so drawing them changes no
global state (a notebook's backend stays as it is; worker threads are safe);
:func:`save_figure` writes one atomically as PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from neo.utils.atomic import atomic_path


def precision_recall_figure(
    recall: np.ndarray, precision: np.ndarray, names: Sequence[str], title: str = ""
) -> Figure:
    """One precision–recall curve per class, each labelled with its AP.

    Args:
        recall: the recall points (R,).
        precision: (K, R) precision per class; a row of ``-1`` (no ground truth) is left out.
        names: the K class names.
        title: the figure title.

    Returns:
        The figure.
    """
    figure = Figure(figsize=(6.4, 4.8))
    axis = figure.subplots()
    for name, curve in zip(names, precision):
        if (curve < 0).all():
            continue
        values = np.clip(curve, 0, None)
        axis.plot(recall, values, label=f"{name} (AP {values.mean():.3f})")
    valid = precision[(precision >= 0).any(axis=1)]
    if len(valid):
        mean = np.clip(valid, 0, None).mean(axis=0)
        axis.plot(recall, mean, "k--", linewidth=2, label=f"all (AP {mean.mean():.3f})")
    axis.set_xlabel("recall")
    axis.set_ylabel("precision")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1.02)
    axis.grid(True, alpha=0.3)
    axis.legend(loc="lower left", fontsize="small")
    axis.set_title(title)
    figure.tight_layout()
    return figure


def confusion_figure(matrix: np.ndarray, names: Sequence[str], title: str = "") -> Figure:
    """The confusion matrix, coloured by each true class's share, with the counts written in.

    Args:
        matrix: (K + 1, K + 1) counts, rows true, columns detected, background last.
        names: the K class names.
        title: the figure title.

    Returns:
        The figure.
    """
    labels = [*names, "background"]
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape, float), where=rows > 0)
    size = 2.5 + 0.6 * len(labels)
    figure = Figure(figsize=(size + 1, size))
    axis = figure.subplots()
    image = axis.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            colour = "white" if share[i, j] > 0.5 else "black"
            axis.text(j, i, str(count), ha="center", va="center", color=colour, fontsize=8)
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("detected as")
    axis.set_ylabel("true class")
    axis.set_title(title)
    figure.colorbar(image, ax=axis, fraction=0.046, label="share of the true class")
    figure.tight_layout()
    return figure


def save_figure(figure: Figure, path: Path, dpi: int = 110) -> Path:
    """Writes the figure as PNG (atomically).

    Args:
        figure: the figure.
        path: the PNG file; its folder is created.
        dpi: resolution.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, format="png")
    return path


def folds_figure(values: dict[str, list[float]], title: str = "") -> Figure:
    """A box plot per metric over the folds, each fold's value drawn on it.

    Args:
        values: metric name -> its value in each fold.
        title: the figure title.

    Returns:
        The figure.
    """
    names = list(values)
    figure = Figure(figsize=(max(4.0, 1.1 * len(names) + 1.5), 4.2))
    axis = figure.subplots()
    axis.boxplot([values[n] for n in names], widths=0.5)
    for position, name in enumerate(names, start=1):
        points = values[name]
        axis.scatter(np.full(len(points), position), points, s=14, color="tab:orange", zorder=3)
    axis.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")
    axis.set_ylabel("value over the folds")
    axis.grid(True, axis="y", alpha=0.3)
    axis.set_title(title)
    figure.tight_layout()
    return figure


def latency_figure(
    names: Sequence[str], median_ms: Sequence[float], p90_ms: Sequence[float], title: str = ""
) -> Figure:
    """Horizontal bars of median latency per model, with a whisker to the 90th percentile.

    Args:
        names: model names.
        median_ms: median latency of each, in milliseconds.
        p90_ms: its 90th percentile.
        title: the figure title.

    Returns:
        The figure.
    """
    figure = Figure(figsize=(7.0, 1.2 + 0.45 * len(names)))
    axis = figure.subplots()
    rows = np.arange(len(names))
    median = np.asarray(median_ms, float)
    spread = np.clip(np.asarray(p90_ms, float) - median, 0, None)
    axis.barh(rows, median, xerr=[np.zeros_like(spread), spread], color="tab:blue", capsize=3)
    for row, value in zip(rows, median):
        axis.text(value, row, f" {value:.1f} ms", va="center", fontsize=8)
    axis.set_yticks(rows, names)
    axis.invert_yaxis()
    axis.set_xlabel("latency per run (ms): median, whisker to p90")
    axis.set_xlim(0, float(max(median + spread, default=1.0)) * 1.25)
    axis.grid(True, axis="x", alpha=0.3)
    axis.set_title(title)
    figure.tight_layout()
    return figure
