"""AutoTune applies the table to trainer, data and model, and leaves kept settings alone."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from lightning.pytorch.callbacks import EarlyStopping

from neo.callbacks import AutoTune
from neo.data.base import DetectionDataModule


class CountedData(DetectionDataModule):
    def __init__(self, num_labeled: int) -> None:
        super().__init__(batch_size=2)
        self.count = num_labeled

    @property
    def num_labeled_samples(self) -> int:
        return self.count

    def load_categories(self) -> list[dict]:
        return [{"id": i + 1, "name": str(i)} for i in range(4)]


def fake_run(num_labeled: int, callbacks: list | None = None):
    trainer = SimpleNamespace(
        datamodule=CountedData(num_labeled),
        fit_loop=SimpleNamespace(max_epochs=3),
        callbacks=list(callbacks or []),
    )
    model = SimpleNamespace(num_classes=4, lr=0.01)
    return trainer, model


def test_applies_table_values_for_the_training_count(caplog):
    caplog.set_level("INFO")
    stopper = EarlyStopping(monitor="val/F1", mode="max", patience=1)
    trainer, model = fake_run(150, [stopper])
    tune = AutoTune()
    tune.setup(trainer, model, "fit")
    # 100-199 samples: 75 epochs, batch 8, lr 3e-4, patience 7
    assert trainer.fit_loop.max_epochs == 75
    assert trainer.datamodule.batch_size == 8 and trainer.datamodule.eval_batch_size == 8
    assert model.lr == pytest.approx(3e-4)
    assert stopper.patience == 7
    assert "150 labelled images" in caplog.text
    assert "estimated time 3.8 min" in caplog.text  # 75 * 150 * 0.02 s


def test_kept_settings_win_and_missing_early_stopping_is_added():
    trainer, model = fake_run(20)
    AutoTune(keep=["epochs", "learning_rate"], monitor="val/AP").setup(trainer, model, "fit")
    assert trainer.fit_loop.max_epochs == 3 and model.lr == 0.01  # kept
    assert trainer.datamodule.batch_size == 4  # < 50 samples
    (stopper,) = [c for c in trainer.callbacks if isinstance(c, EarlyStopping)]
    assert stopper.monitor == "val/AP" and stopper.patience == 5


def test_only_fit_is_tuned_and_bad_keep_is_rejected():
    trainer, model = fake_run(20)
    AutoTune().setup(trainer, model, "validate")
    assert trainer.fit_loop.max_epochs == 3
    with pytest.raises(ValueError, match="unknown settings"):
        AutoTune(keep=["epoch"])


def test_uses_the_data_modules_single_lookup_and_scales_the_estimate_to_kept_epochs(caplog):
    caplog.set_level("INFO")
    trainer, model = fake_run(150)
    trainer.datamodule._tuning = {**trainer.datamodule.tuning, "estimated_time_min": 10.0}
    AutoTune(keep=["epochs"]).setup(trainer, model, "fit")
    # the callback reads the data module's lookup (10 min for the table's 75 epochs), scaled to 3
    assert "estimated time 0.4 min" in caplog.text
