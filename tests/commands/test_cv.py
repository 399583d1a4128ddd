"""``neo cv`` end to end on a tiny spectrogram dataset: per-fold checkpoints and the summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from lightning import LightningDataModule, LightningModule
from torch.utils.data import DataLoader, TensorDataset

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
        spec = state["neo_inference_spec"]
        assert spec["class_names"] == ["a", "b"]
        assert spec["spectrogram"]["image_size"] == 64
        assert state["hyper_parameters"]["lr"] == 1e-4  # AutoTune: < 50 labelled images
    assert (out / "tiny_best.ckpt").is_file()
    assert (out / "tiny_summary.png").stat().st_size > 1000  # box plot of the fold metrics
    (provenance, *_) = sorted(tmp_path.rglob("provenance.json"))
    assert json.loads(provenance.read_text())["data_files"] >= 1  # the spectrogram JSON files
    with open(out / "tiny_summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["fold"] for r in rows] == ["0", "1", "mean", "std"]
    # 4 recordings of 2 chunks, 2 folds, no test split: 2 recordings (4 images) validate each fold
    assert {r["val_images"] for r in rows[:2]} == {"4"}
    for key in ("precision", "recall", "F1", "AP"):
        assert 0.0 <= float(rows[2][key]) <= 1.0
    markdown = (out / "tiny_summary.md").read_text()
    assert "| mean ± std |" in markdown and " | F1 | AP |" in markdown
    printed = capsys.readouterr().out
    assert "mean ± std" in printed
    assert "best fold by val/F1 (max)" in printed  # the config's ModelCheckpoint monitor


class FoldData(LightningDataModule):
    """Any data module with fold/num_folds: fold k validates on k + 2 samples of value k."""

    def __init__(self, fold: int = 0, num_folds: int = 2) -> None:
        super().__init__()
        self.fold, self.num_folds, self.num_classes = fold, num_folds, 1

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.full((4, 2), self.fold + 1.0)), batch_size=2)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.full((self.fold + 2, 2), float(self.fold))))


class FoldModel(LightningModule):
    def __init__(self, num_classes: int = 1) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, num_classes)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val/score", batch[0].mean())
        self.log("train_like", 1.0)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def weight(checkpoint: Path) -> torch.Tensor:
    return torch.load(checkpoint, weights_only=True)["state_dict"]["layer.weight"]


@pytest.mark.parametrize(("mode", "best"), [("max", 2), ("min", 0)])
def test_cv_works_for_any_fold_data_module_and_picks_by_monitor(tmp_path, mode, best):
    out = tmp_path / "cv"
    args = [
        "cv",
        "--model.class_path", f"{__name__}.FoldModel",
        "--data.class_path", f"{__name__}.FoldData",
        "--data.init_args.num_folds", "3",
        "--trainer.max_epochs", "1",
        "--trainer.logger", "false",
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--trainer.num_sanity_val_steps", "0",
        "--name", "toy", "--out", str(out), "--monitor", "val/score", "--mode", mode,
    ]  # fmt: skip
    assert main(args) == 0
    with open(out / "toy_summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["fold"] for r in rows] == ["0", "1", "2", "mean", "std"]
    assert [r["val_images"] for r in rows[:3]] == ["2", "3", "4"]
    assert [float(r["score"]) for r in rows[:3]] == [0.0, 1.0, 2.0]
    assert not (out / "toy_summary.png").exists()  # no leading metric to plot
    assert "train_like" not in rows[0]  # only what validation logs under val/
    weights = [weight(out / f"toy_fold{k}.ckpt") for k in (0, 1, 2)]
    assert len({float(w.sum()) for w in weights}) == 3  # each fold trained on its own data
    chosen = weight(out / "toy_best.ckpt")
    assert torch.equal(chosen, weights[best])


def test_cv_of_a_data_module_without_folds_is_a_one_line_error(tmp_path, capsys):
    code = main(["cv", "--config", CONFIG, "--data.class_path", "neo.data.DemoCocoDataModule",
                 "--out", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("neo: error: neo.data.DemoCocoDataModule has no fold/num_folds")
