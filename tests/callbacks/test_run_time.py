import re

import pytest
from lightning.pytorch.demos.boring_classes import BoringModel

from neo.callbacks.run_time import RunTimeEstimate, format_duration
from neo.trainer import NeoTrainer


@pytest.mark.parametrize(
    ("seconds", "text"), [(12.4, "12 s"), (125, "2 min 05 s"), (3780, "1 h 03 min"), (-1, "0 s")]
)
def test_durations_read_as_minutes_and_seconds(seconds, text):
    assert format_duration(seconds) == text


def fit(tmp_path, **trainer_args):
    trainer = NeoTrainer(
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_args,
    )
    trainer.fit(BoringModel())
    return trainer


def test_a_fit_prints_its_expected_duration_once_and_its_run_folder(tmp_path, capsys):
    fit(tmp_path, max_epochs=3, limit_train_batches=10, limit_val_batches=2)
    lines = capsys.readouterr().out.splitlines()
    estimates = [line for line in lines if line.startswith("neo: about")]
    assert len(estimates) == 1
    # timed after 2 warm-up and 4 timed batches: 24 of the 30 batches are left
    assert re.search(
        r"\(24 training batches at \d+\.\d\d s, 3 validations of 2 batches\)", estimates[0]
    )
    assert any(line.startswith("neo: fit took") and str(tmp_path) in line for line in lines)


def test_short_epochs_are_estimated_at_the_end_of_the_first(tmp_path, capsys):
    fit(tmp_path, max_epochs=4, limit_train_batches=3, num_sanity_val_steps=0, limit_val_batches=1)
    estimates = [line for line in capsys.readouterr().out.splitlines() if "neo: about" in line]
    assert len(estimates) == 1 and "(9 training batches" in estimates[0]


def test_the_callback_is_added_once(tmp_path):
    own = RunTimeEstimate(warmup_batches=1)
    trainer = NeoTrainer(default_root_dir=tmp_path, logger=False, callbacks=[own])
    assert [c for c in trainer.callbacks if isinstance(c, RunTimeEstimate)] == [own]


@pytest.mark.parametrize("wandb_like", [False, True])
def test_the_checkpoint_folder_is_named_when_it_is_not_in_the_run_folder(
    tmp_path, capsys, wandb_like
):
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    checkpoints = tmp_path / ("project/run_id/checkpoints" if wandb_like else "log/checkpoints")
    trainer = NeoTrainer(
        default_root_dir=tmp_path,
        logger=CSVLogger(tmp_path, name="", version="log"),
        callbacks=[ModelCheckpoint(dirpath=checkpoints)],
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(BoringModel())
    last = [line for line in capsys.readouterr().out.splitlines() if "fit took" in line][-1]
    assert last.endswith(
        f"run folder {tmp_path / 'log'}" + (f"; checkpoints in {checkpoints}" if wandb_like else "")
    )
