"""Configured vs data-fitted anchors for the spectrogram Faster R-CNN: recall, F1 and AP.

    uv run python tools/bench/anchors.py [--config configs/demo/spectrogram_wideband.yaml]

Make the data first (the config's data fragment lists the two commands). The anchor recall of
the training boxes (IoU >= 0.5, shape only) is computed for the configured anchors and for the
fitted ones; then the config is fitted twice from the same seed, ``--model.fit_anchors false``
and ``true``, one after the other, and the validation metrics of each are read from its CSV log:
the last epoch's F1 and AP overall and per class, the best F1 and the spread of F1 over the
second half of the epochs. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from jsonargparse import ArgumentParser, Namespace
from lightning import LightningDataModule

from neo.models.anchors import anchor_recall, choose_anchors, configured_anchors


def data_module(config: Path) -> LightningDataModule:
    """The config's data module, built as ``neo fit`` builds it."""
    parser = ArgumentParser()
    parser.add_argument("--config", action="config")
    parser.add_subclass_arguments(LightningDataModule, "data")
    for key in ("trainer", "model", "seed_everything"):
        parser.add_argument(f"--{key}", type=dict | str | int | None)
    parsed = parser.parse_args(["--config", str(config)])
    return parser.instantiate_classes(Namespace(data=parsed.data)).data


def config_anchors(config: Path) -> tuple[list[float], list[float]]:
    """Anchor sizes and aspect ratios the config's model starts from."""
    model = yaml.safe_load(config.read_text())["model"]
    if isinstance(model, str):
        model = yaml.safe_load((config.parent / model).read_text())
    args = model.get("init_args", {})
    return configured_anchors(
        args.get("anchor_sizes"), args.get("aspect_ratios"), args.get("returned_layers")
    )


def fit(config: Path, fitted: bool, out: Path) -> tuple[dict[str, float], list[float], float]:
    """Runs ``neo fit``; returns the last validation row, every epoch's val/F1 and the time."""
    command = [
        sys.executable, "-m", "neo", "fit", "--config", str(config),
        "--model.fit_anchors", str(fitted).lower(),
        "--trainer.default_root_dir", str(out),
        "--trainer.logger.init_args.save_dir", str(out),
        "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"neo fit failed:\n{done.stderr[-2000:]}")
    for line in done.stdout.splitlines():
        if line.startswith("neo: anchor recall"):
            print(line)
    rows = list(csv.DictReader(next(out.rglob("metrics.csv")).open()))
    val = [
        {k: float(v) for k, v in row.items() if v and k.startswith("val/")}
        for row in rows
        if row.get("val/F1")
    ]
    return val[-1], [row["val/F1"] for row in val], seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--config", type=Path, default=Path("configs/demo/spectrogram_wideband.yaml")
    )
    args = parser.parse_args()
    datamodule = data_module(args.config)
    box_wh = datamodule.training_box_sizes()
    sizes, ratios = config_anchors(args.config)
    fitted_sizes, fitted_ratios, _, _ = choose_anchors(box_wh, sizes, ratios)
    print(f"{args.config}: {len(box_wh)} training boxes\n")
    print("| anchors | sizes | aspect ratios (h/w) | anchor recall (IoU >= 0.5) |")
    print("|---|---|---|---|")
    print(f"| configured | {sizes} | {ratios} | {anchor_recall(box_wh, sizes, ratios):.3f} |")
    recall = anchor_recall(box_wh, fitted_sizes, fitted_ratios)
    print(f"| fitted | {fitted_sizes} | {fitted_ratios} | {recall:.3f} |\n", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, fitted in (("configured", False), ("fitted", True)):
            results[name] = fit(args.config, fitted, Path(tmp) / name)
    classes = datamodule.class_names
    print("| anchors | fit time | last F1 | best F1 | F1 spread, 2nd half (std) | last AP | AP50 |")
    print("|---|---|---|---|---|---|---|")
    for name, (last, f1s, seconds) in results.items():
        half = f1s[len(f1s) // 2 :]
        spread = statistics.pstdev(half) if len(half) > 1 else 0.0
        print(
            f"| {name} | {seconds:.0f} s | {last['val/F1']:.3f} | {max(f1s):.3f} | {spread:.3f} "
            f"| {last['val/AP']:.3f} | {last['val/AP50']:.3f} |"
        )
    print("\n| class | " + " | ".join(f"F1 {n} | AP {n}" for n in results) + " |")
    print("|---|" + "---|---|" * len(results))
    for label in classes:
        cells = [
            f"{last.get(f'val/F1_{label}', float('nan')):.3f} | "
            f"{last.get(f'val/AP_{label}', float('nan')):.3f}"
            for last, _, _ in results.values()
        ]
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
