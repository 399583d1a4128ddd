"""``neo cv``: k-fold cross-validation, one fresh model per fold, in one process.

Every fold is an ordinary ``neo fit`` of the same config with ``--data.init_args.fold=k`` (the data
module must accept ``fold`` and ``num_folds``, as :class:`neo.data.SpectrogramDataModule` does).
After each fold the best checkpoint (the config's ModelCheckpoint; its last one when nothing is
monitored) is validated again and copied to ``OUT/<name>_fold<k>.ckpt``; the fold with the best
``val/F1`` (``val/AP`` when F1 is not logged) is also copied to ``OUT/<name>_best.ckpt``. The
summary (per fold, then mean ± sample standard deviation over folds) is written to
``OUT/<name>_summary.csv`` and ``.md`` and printed.

The number of folds is ``--num_folds`` when given, else the data module's ``num_folds`` (its
auto-tune choice when the config leaves it null). With 0 or 1 folds there is a single run.
"""

from __future__ import annotations

import argparse
import csv
import gc
import io
import shutil
import statistics
from pathlib import Path
from typing import Any

from neo.utils.atomic import atomic_path

METRICS = ("precision", "recall", "F1", "AP", "AP50")


def build_parser() -> argparse.ArgumentParser:
    """Options of ``neo cv``; anything else is passed to every fold's ``neo fit``."""
    parser = argparse.ArgumentParser(
        prog="neo cv",
        description="Cross-validate: train every fold of a config, save the best checkpoint per "
        "fold and overall, and write a summary table. Other options (e.g. --trainer.max_epochs=5) "
        "go to every fold's `neo fit`.",
    )
    parser.add_argument("--config", required=True, action="append", help="neo config file(s)")
    parser.add_argument("--name", help="prefix of the output files (default: the config's name)")
    parser.add_argument("--out", type=Path, help="output folder (default: runs/cv/<name>)")
    parser.add_argument("--num_folds", type=int, help="number of folds (default: from the data)")
    return parser


def _fold_cli(base: list[str], fold: int, num_folds: int | None, root: Path) -> Any:
    from neo.cli import NeoCLI

    args = [*base, f"--data.init_args.fold={fold}", f"--trainer.default_root_dir={root}"]
    if num_folds is not None:
        args.append(f"--data.init_args.num_folds={num_folds}")
    return NeoCLI(args=args, run=False)


def _copy(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def run_fold(base: list[str], fold: int, num_folds: int, out: Path, name: str) -> dict[str, Any]:
    """Trains and re-validates one fold; returns its summary row."""
    cli = _fold_cli(base, fold, num_folds, out / f"fold{fold}")
    trainer, model, datamodule = cli.trainer, cli.model, cli.datamodule
    trainer.fit(model, datamodule=datamodule)
    checkpoint = trainer.checkpoint_callback
    best = Path(checkpoint.best_model_path) if checkpoint and checkpoint.best_model_path else None
    if best is None or not best.is_file():
        last = getattr(checkpoint, "last_model_path", "") if checkpoint else ""
        best = Path(last) if last else None
    if best is None or not best.is_file():
        raise FileNotFoundError(
            f"fold {fold}: training saved no checkpoint (add a ModelCheckpoint)"
        )
    results = trainer.validate(model, datamodule=datamodule, ckpt_path=str(best), verbose=False)
    metrics = results[0] if results else {}
    saved = out / f"{name}_fold{fold}.ckpt"
    _copy(best, saved)
    split = datamodule.split
    row: dict[str, Any] = {
        "fold": fold,
        "train_recordings": len(split.train),
        "val_recordings": len(split.val),
        "test_recordings": len(split.test),
        "train_images": len(datamodule.records("train")),
        "val_images": len(datamodule.records("val")),
        "epochs": trainer.current_epoch,
        "checkpoint": str(saved),
    }
    for key in METRICS:
        row[key] = _number(metrics.get(f"val/{key}"))
    del cli, trainer, model, datamodule
    gc.collect()
    return row


def summary_rows(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Formatted per-fold rows plus a ``mean ± std`` row (sample std over folds)."""
    table = []
    for row in rows:
        table.append(
            {
                "fold": str(row["fold"]),
                "val recordings": str(row["val_recordings"]),
                "val images": str(row["val_images"]),
                "epochs": str(row["epochs"]),
                **{k: "-" if row[k] is None else f"{row[k]:.4f}" for k in METRICS},
            }
        )
    stats: dict[str, str] = {
        "fold": "mean ± std",
        "val recordings": "",
        "val images": "",
        "epochs": "",
    }
    for key in METRICS:
        values = [r[key] for r in rows if r[key] is not None]
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
    """Writes ``<name>_summary.csv`` (numbers, mean, std) and ``.md``; returns the Markdown."""
    table = summary_rows(rows)
    buffer = io.StringIO()
    fields = list(rows[0])
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    for label, reduce in (("mean", statistics.fmean), ("std", statistics.stdev)):
        agg: dict[str, Any] = {f: "" for f in fields}
        agg["fold"] = label
        for key in METRICS:
            values = [r[key] for r in rows if r[key] is not None]
            if label == "std" and len(values) < 2:
                agg[key] = 0.0 if values else ""
            else:
                agg[key] = reduce(values) if values else ""
        writer.writerow(agg)
    with atomic_path(out / f"{name}_summary.csv") as tmp:
        tmp.write_text(buffer.getvalue())
    text = markdown(table)
    with atomic_path(out / f"{name}_summary.md") as tmp:
        tmp.write_text(f"# Cross-validation: {name}\n\n{text}")
    return text


def best_fold(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The row with the highest F1 (AP when no fold has F1)."""
    key = "F1" if any(r["F1"] is not None for r in rows) else "AP"
    return max(rows, key=lambda r: -1.0 if r[key] is None else r[key])


def run(argv: list[str]) -> int:
    """Runs ``neo cv ...``; returns the exit code."""
    parser = build_parser()
    options, rest = parser.parse_known_args(argv)
    name = options.name or Path(options.config[-1]).stem
    out = options.out or Path("runs") / "cv" / name
    base = [arg for config in options.config for arg in ("--config", config)] + rest
    num_folds = options.num_folds
    if num_folds is None:
        probe = _fold_cli(base, 0, None, out / "fold0")
        datamodule = probe.datamodule
        if not hasattr(datamodule, "num_folds"):
            raise ValueError(
                f"{type(datamodule).__name__} has no num_folds: it cannot be cross-validated"
            )
        num_folds = int(datamodule.num_folds)
        del probe, datamodule
    folds = max(1, num_folds)
    print(f"neo cv: {folds} fold(s) of {', '.join(options.config)} -> {out}")
    out.mkdir(parents=True, exist_ok=True)
    rows = [run_fold(base, k, num_folds, out, name) for k in range(folds)]
    best = best_fold(rows)
    _copy(Path(best["checkpoint"]), out / f"{name}_best.ckpt")
    text = write_summary(rows, out, name)
    print(text)
    print(f"best fold: {best['fold']} -> {out / f'{name}_best.ckpt'}")
    return 0
