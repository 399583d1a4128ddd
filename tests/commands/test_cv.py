"""``neo cv`` end to end on a tiny spectrogram dataset: per-fold checkpoints and the summary."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from neo.cli import main
from tests.helpers.spectrograms import write_dataset

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "tiny_spectrogram.yaml")


def test_cv_runs_every_fold_and_writes_summary(tmp_path, capsys):
    data = write_dataset(tmp_path / "data", recordings=4, chunks=2)
    out = tmp_path / "cv"
    code = main(
        [
            "cv",
            "--config",
            CONFIG,
            "--name",
            "tiny",
            "--out",
            str(out),
            f"--data.init_args.roots=[{data}]",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
        ]
    )
    assert code == 0
    for fold in (0, 1):
        state = torch.load(out / f"tiny_fold{fold}.ckpt", map_location="cpu", weights_only=True)
        assert state["neo_classes"]["names"] == ["a", "b"]
        assert state["SpectrogramDataModule"]["image_size"] == 64
        assert state["hyper_parameters"]["lr"] == 1e-4  # AutoTune: < 50 labelled images
    assert (out / "tiny_best.ckpt").is_file()
    with open(out / "tiny_summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["fold"] for r in rows] == ["0", "1", "mean", "std"]
    assert {r["val_recordings"] for r in rows[:2]} == {"2"}  # 4 recordings, 2 folds, no test split
    for key in ("precision", "recall", "F1", "AP"):
        assert 0.0 <= float(rows[2][key]) <= 1.0
    markdown = (out / "tiny_summary.md").read_text()
    assert "| mean ± std |" in markdown and " | F1 | AP |" in markdown
    assert "mean ± std" in capsys.readouterr().out
