"""``neo cv``: k-fold cross-validation, one fresh model per fold, in one process.

Every fold is an ordinary ``neo fit`` of the same config with ``data.init_args.fold`` set to the
fold (any data module with ``fold`` and ``num_folds`` arguments). After each fold the best
checkpoint (the config's ModelCheckpoint; ``last.ckpt`` when nothing is monitored) is validated
again and copied to ``OUT/<name>_fold<k>.ckpt``; the fold with the best ``--monitor`` metric is
also copied to ``OUT/<name>_best.ckpt``. The summary (every metric logged under ``val/``, per fold,
then mean ± sample standard deviation over folds) is written to ``OUT/<name>_summary.csv`` and
``.md`` and printed, with a box plot per leading metric over the folds in ``_summary.png``.
"""

from __future__ import annotations

import csv
import gc
import io
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning import LightningDataModule, LightningModule, Trainer

from neo.utils.atomic import atomic_path

# Leading columns of the table, in this order when logged; other val/ metrics follow.
LEADING_METRICS = (
    *("precision", "recall", "F1", "AP", "AP50"),
    *("rank1", "rank5", "mAP", "AUROC", "OSCR", "macro_F1"),
)
FIXED_COLUMNS = ("fold", "val_images", "epochs", "checkpoint")

FoldBuilder = Callable[
    [int, int | None, Path], tuple[Trainer, LightningModule, LightningDataModule]
]


def cross_validate(
    build_fold: FoldBuilder,
    name: str | None = None,
    out: Path | None = None,
    num_folds: int | None = None,
    monitor: str | None = None,
    mode: str | None = None,
) -> list[dict[str, Any]]:
    """Cross-validate a config: train every fold, validate its best checkpoint, summarise.

    Args:
        build_fold: ``(fold, num_folds, root) -> (trainer, model, datamodule)`` for one fold,
            built from the parsed config (``num_folds`` None: the data module's own; ``root``:
            the fold's ``trainer.default_root_dir``).
        name: prefix of the output files (default: the last config file's name, else ``cv``).
        out: output folder (default: ``runs/cv/<name>``).
        num_folds: number of folds (default: the data module's ``num_folds``).
        monitor: the metric that picks the best fold (default: the config's ModelCheckpoint
            monitor, else ``val/AP``).
        mode: ``max`` or ``min`` for ``monitor`` (default: the ModelCheckpoint's, else ``max``).

    Returns:
        One row per fold (fold, val_images, epochs, checkpoint and the ``val/`` metrics).
    """
    name = name or "cv"
    out = Path(out) if out is not None else Path("runs") / "cv" / name
    first: tuple[Trainer, LightningModule, LightningDataModule] | None
    first = trainer, model, datamodule = build_fold(0, num_folds, out / "fold0")
    if num_folds is None:
        if not hasattr(datamodule, "num_folds"):
            raise ValueError(
                f"{type(datamodule).__name__} has no num_folds: it cannot be cross-validated"
            )
        num_folds = int(datamodule.num_folds)
    monitor, mode = _monitor(trainer, monitor, mode)
    folds = max(1, num_folds)
    print(f"neo cv: {folds} fold(s), best fold by {monitor} ({mode}) -> {out}")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for fold in range(folds):
        trainer, model, datamodule = first or build_fold(fold, num_folds, out / f"fold{fold}")
        first = None
        rows.append(run_fold(trainer, model, datamodule, fold, out, name))
        del trainer, model, datamodule
        gc.collect()
        if _column(monitor) not in rows[0]:
            logged = ", ".join(f"val/{k}" for k in rows[0] if k not in FIXED_COLUMNS)
            raise ValueError(f"--monitor {monitor} is not logged by validation (logged: {logged})")
    best = best_fold(rows, _column(monitor), mode)
    _copy(Path(best["checkpoint"]), out / f"{name}_best.ckpt")
    text = write_summary(rows, out, name)
    print(text)
    print(f"best fold: {best['fold']} -> {out / f'{name}_best.ckpt'}")
    return rows


def _monitor(trainer: Trainer, monitor: str | None, mode: str | None) -> tuple[str, str]:
    callback = trainer.checkpoint_callback
    configured = getattr(callback, "monitor", None)
    if monitor is None:
        monitor = configured or "val/AP"
    if mode is None:
        mode = getattr(callback, "mode", "max") if monitor == configured else "max"
    if mode not in ("max", "min"):
        raise ValueError(f"--mode {mode}: use max or min")
    return monitor, mode


def _column(metric: str) -> str:
    return metric.removeprefix("val/")


def _copy(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _best_checkpoint(trainer: Trainer, fold: int) -> Path:
    for callback in trainer.checkpoint_callbacks:
        for attribute in ("best_model_path", "last_model_path"):
            path = getattr(callback, attribute, "")
            if path and Path(path).is_file():
                return Path(path)
    raise FileNotFoundError(f"fold {fold}: training saved no checkpoint (add a ModelCheckpoint)")


def _num_val_samples(trainer: Trainer) -> int | None:
    loaders = trainer.val_dataloaders
    loaders = loaders if isinstance(loaders, list | tuple) else [loaders]
    try:  # the first loader: the validated images (ReID's second is its gallery)
        return len(loaders[0].dataset)
    except (AttributeError, TypeError):
        return None


def run_fold(
    trainer: Trainer,
    model: LightningModule,
    datamodule: LightningDataModule,
    fold: int,
    out: Path,
    name: str,
) -> dict[str, Any]:
    """Trains and re-validates one fold; returns its summary row."""
    trainer.fit(model, datamodule=datamodule)
    best = _best_checkpoint(trainer, fold)
    results = trainer.validate(model, datamodule=datamodule, ckpt_path=str(best), verbose=False)
    metrics = results[0] if results else {}
    saved = out / f"{name}_fold{fold}.ckpt"
    _copy(best, saved)
    row: dict[str, Any] = {
        "fold": fold,
        "val_images": _num_val_samples(trainer),
        "epochs": trainer.current_epoch,
        "checkpoint": str(saved),
    }
    logged = {_column(k): _number(v) for k, v in metrics.items() if k.startswith("val/")}
    row.update({k: logged.pop(k) for k in LEADING_METRICS if k in logged})
    row.update(logged)
    return row


def _metric_columns(rows: list[dict[str, Any]]) -> list[str]:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(k for k in row if k not in FIXED_COLUMNS))
    return list(columns)


def _format(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def summary_rows(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Formatted per-fold rows plus a ``mean ± std`` row (sample std over folds)."""
    metrics = _metric_columns(rows)
    table = [
        {
            "fold": str(row["fold"]),
            "val images": _format(row["val_images"]),
            "epochs": str(row["epochs"]),
            **{k: _format(row.get(k)) for k in metrics},
        }
        for row in rows
    ]
    stats = {"fold": "mean ± std", "val images": "", "epochs": ""}
    for key in metrics:
        values = [r[key] for r in rows if r.get(key) is not None]
        if not values:
            stats[key] = "-"
            continue
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        stats[key] = f"{statistics.fmean(values):.4f} ± {std:.4f}"
    table.append(stats)
    return table


def markdown(table: list[dict[str, str]]) -> str:
    """A Markdown table of the rows."""
    header = list(table[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row[h] for h in header) + " |" for row in table]
    return "\n".join(lines) + "\n"


def write_summary(rows: list[dict[str, Any]], out: Path, name: str) -> str:
    """Writes ``<name>_summary.csv`` (numbers, mean, std), ``.md`` and ``.png``.

    Returns:
        The Markdown table.
    """
    metrics = _metric_columns(rows)
    fields = [*FIXED_COLUMNS, *metrics]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    for label, reduce in (("mean", statistics.fmean), ("std", statistics.stdev)):
        agg: dict[str, Any] = dict.fromkeys(fields, "")
        agg["fold"] = label
        for key in metrics:
            values = [r[key] for r in rows if r.get(key) is not None]
            if label == "std" and len(values) < 2:
                agg[key] = 0.0 if values else ""
            else:
                agg[key] = reduce(values) if values else ""
        writer.writerow(agg)
    with atomic_path(out / f"{name}_summary.csv") as tmp:
        tmp.write_text(buffer.getvalue())
    text = markdown(summary_rows(rows))
    with atomic_path(out / f"{name}_summary.md") as tmp:
        tmp.write_text(f"# Cross-validation: {name}\n\n{text}")
    plotted = {
        k: [r[k] for r in rows if r.get(k) is not None] for k in LEADING_METRICS if k in metrics
    }
    plotted = {k: v for k, v in plotted.items() if v}
    if plotted:
        from neo.utils.plots import folds_figure, save_figure

        title = f"{name}: {len(rows)} folds"
        save_figure(folds_figure(plotted, title), out / f"{name}_summary.png")
    return text


def best_fold(rows: list[dict[str, Any]], column: str, mode: str = "max") -> dict[str, Any]:
    """The row with the best ``column`` (``mode`` max or min); missing values count as worst."""
    sign = 1.0 if mode == "max" else -1.0

    def score(row: dict[str, Any]) -> float:
        value = row.get(column)
        return float("-inf") if value is None else sign * value

    return max(rows, key=score)
