"""``NeoTrainer``: Lightning's Trainer with neo's checkpoint rules.

The CLI's model verbs are its methods (``fit``/``validate``/``test``/``predict``); a new verb is
a new method that receives the built ``model`` and ``datamodule``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint
from lightning.pytorch.plugins.io import CheckpointIO

from neo.utils.atomic import remove_stale_temporaries
from neo.utils.checkpoint_io import AtomicCheckpointIO


class LastCheckpoint(ModelCheckpoint):
    """Writes ``last.ckpt`` at the end of every epoch, improved or not.

    Lightning's ``ModelCheckpoint(monitor=..., save_last=True)`` rewrites ``last.ckpt`` only when
    the monitored metric improves; :class:`NeoTrainer` pairs each such callback with this one
    (in the same folder), so resuming from ``last.ckpt`` loses no epoch.

    Args:
        dirpath: the folder (``None``: the run's ``checkpoints`` folder, as ModelCheckpoint).
        name: the file's name without extension.
        save_weights_only: save only the weights, as the paired callback does.
    """

    def __init__(
        self, dirpath: Path | str | None = None, name: str = "last", save_weights_only: bool = False
    ) -> None:
        super().__init__(
            dirpath=dirpath,
            filename=name,
            monitor=None,
            save_top_k=1,
            save_weights_only=save_weights_only,
            enable_version_counter=False,
        )

    @property
    def state_key(self) -> str:  # noqa: D102
        return self._generate_state_key(last_checkpoint=self.filename)


class StaleTemporaries(Callback):
    """Deletes the ``.<name>.ckpt.*.tmp`` files a killed save left in the checkpoint folders."""

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        if not trainer.is_global_zero:
            return
        for callback in trainer.checkpoint_callbacks:
            folder = getattr(callback, "dirpath", None)
            if folder:
                for path in remove_stale_temporaries(Path(folder), ".ckpt"):
                    print(f"neo: removed {path} (left by an interrupted save)")


class NeoTrainer(Trainer):
    """Lightning's Trainer with neo's rules for checkpoints.

    - checkpoints are written atomically and read weights-only (:class:`AtomicCheckpointIO`,
      unless ``plugins`` names another CheckpointIO);
    - a ``ModelCheckpoint`` with a monitor and ``save_last=True`` gets ``last.ckpt`` written at
      the end of every epoch (:class:`LastCheckpoint`), not only when the metric improves;
    - ``fast_dev_run`` writes no checkpoints and no validation pictures;
    - temporaries of interrupted saves are removed from the checkpoint folders when fitting starts.

    Takes every argument of :class:`lightning.Trainer`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["plugins"] = with_atomic_checkpoints(kwargs.get("plugins"))
        super().__init__(*args, **kwargs)
        if self.fast_dev_run:
            self.callbacks = [c for c in self.callbacks if not writes_files(c)]
        else:
            self.callbacks += last_checkpoints(self.callbacks)
        self.callbacks.append(StaleTemporaries())


def with_atomic_checkpoints(plugins: Any) -> list[Any]:
    """``plugins`` as a list, with :class:`AtomicCheckpointIO` added unless a CheckpointIO is."""
    if plugins is None:
        plugins = []
    elif not isinstance(plugins, list | tuple):
        plugins = [plugins]
    plugins = list(plugins)
    if not any(isinstance(p, CheckpointIO) for p in plugins):
        plugins.append(AtomicCheckpointIO())
    return plugins


def writes_files(callback: Callback) -> bool:
    """Whether a callback writes checkpoints or pictures (dropped under ``fast_dev_run``)."""
    from neo.callbacks.visualization import DetectionVisualizer

    return isinstance(callback, Checkpoint | DetectionVisualizer)


def last_checkpoints(callbacks: list[Callback]) -> list[LastCheckpoint]:
    """One :class:`LastCheckpoint` per folder of a monitored ``save_last=True`` ModelCheckpoint.

    The paired ModelCheckpoint stops writing ``last.ckpt`` itself (two writers of one file would
    make Lightning version the name as ``last-v1.ckpt``).
    """
    added: dict[str | None, LastCheckpoint] = {}
    for callback in callbacks:
        if (
            isinstance(callback, ModelCheckpoint)
            and not isinstance(callback, LastCheckpoint)
            and callback.monitor is not None
            and callback.save_last is True
        ):
            callback.save_last = False
            key = None if callback.dirpath is None else str(callback.dirpath)
            added.setdefault(
                key,
                LastCheckpoint(
                    callback.dirpath, callback.CHECKPOINT_NAME_LAST, callback.save_weights_only
                ),
            )
    return list(added.values())
