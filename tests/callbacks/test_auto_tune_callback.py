"""AutoTune applies the table to trainer, data and model, and leaves kept settings alone."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.utilities.parsing import AttributeDict

from neo.callbacks import AutoTune


def fake_run(num_labeled: int, callbacks: list | None = None):
    datamodule = SimpleNamespace(num_labeled_samples=num_labeled, batch_size=2, eval_batch_size=2)
    trainer = SimpleNamespace(
        datamodule=datamodule,
        fit_loop=SimpleNamespace(max_epochs=3),
        callbacks=list(callbacks or []),
    )
    model = SimpleNamespace(num_classes=4, hparams=AttributeDict(lr=0.01))
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
    assert model.hparams.lr == pytest.approx(3e-4)
    assert stopper.patience == 7
    assert "150 labelled training images" in caplog.text
    assert "estimated time 3.8 min" in caplog.text  # 75 * 150 * 0.02 s


def test_kept_settings_win_and_missing_early_stopping_is_added():
    trainer, model = fake_run(20)
    AutoTune(keep=["epochs", "learning_rate"], monitor="val/AP").setup(trainer, model, "fit")
    assert trainer.fit_loop.max_epochs == 3 and model.hparams.lr == 0.01  # kept
    assert trainer.datamodule.batch_size == 4  # < 50 samples
    (stopper,) = [c for c in trainer.callbacks if isinstance(c, EarlyStopping)]
    assert stopper.monitor == "val/AP" and stopper.patience == 5


def test_only_fit_is_tuned_and_bad_keep_is_rejected():
    trainer, model = fake_run(20)
    AutoTune().setup(trainer, model, "validate")
    assert trainer.fit_loop.max_epochs == 3
    with pytest.raises(ValueError, match="unknown settings"):
        AutoTune(keep=["epoch"])
