"""``NeoTrainer``: Lightning's Trainer with neo's checkpoint rules.

The CLI's model verbs are its methods (``fit``/``validate``/``test``/``predict``); a new verb is
a new method that receives the built ``model`` and ``datamodule``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.plugins.io import CheckpointIO

from neo.callbacks.run_time import RunTimeEstimate
from neo.deploy.options import CalibrationConfig
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
    - temporaries of interrupted saves are removed from the checkpoint folders when fitting starts;
    - a fit prints its expected duration after its first steps and its run folder at the end
      (:class:`~neo.callbacks.run_time.RunTimeEstimate`);
    - a run logged to W&B (or another logger without run folders) gets its own run folder, the
      one holding its checkpoints (:attr:`log_dir`).

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
        if not any(isinstance(c, RunTimeEstimate) for c in self.callbacks):
            self.callbacks.append(RunTimeEstimate())

    @property
    def log_dir(self) -> str | None:
        """The run folder; with a W&B (or any other) logger ``<save_dir>/<name>/<version>``.

        Lightning gives such loggers their ``save_dir``, shared by every run, so each run's
        ``config.yaml``, ``provenance.json`` and plots overwrote the previous run's; this is the
        folder Lightning already puts their checkpoints in. A broadcast under DDP, as Lightning's.
        """
        logger = self.loggers[0] if self.loggers else None
        if logger is None or isinstance(logger, (TensorBoardLogger, CSVLogger)):
            return super().log_dir
        version = logger.version  # known once the logger's experiment exists (fit's setup)
        if version is None:
            return super().log_dir
        version = version if isinstance(version, str) else f"version_{version}"
        folder = os.path.join(logger.save_dir or self.default_root_dir, str(logger.name), version)
        return self.strategy.broadcast(folder)

    def export(
        self,
        model: LightningModule,
        datamodule: Any | None = None,
        ckpt_path: str | None = None,
        format: Literal["onnx", "torch_tensorrt", "tensorrt"] = "onnx",
        precision: Literal["fp32", "fp16", "int8"] = "fp32",
        input_size: tuple[int, int] | None = None,
        batch: int = 1,
        dynamic: bool = False,
        output: Path | None = None,
        name: str | None = None,
        val_images: int = 32,
        calib: CalibrationConfig | None = None,
        allow_tf32: bool = False,
        device: str | None = None,
        target_fps: float | None = None,
    ) -> dict[str, Any]:
        """Export a trained detector to ONNX, TensorRT or Torch-TensorRT, validated on real images.

        The exported graph includes post-processing: input ``images`` float32 (B, 3, H, W) RGB
        in [0, 1], letterboxed like the evaluation transform; outputs ``boxes`` (B, N, 4) xyxy
        input pixels, ``scores`` (B, N), ``labels`` (B, N). Every file gets a JSON sidecar, and
        ``export_report.json`` compares each with PyTorch (output difference, COCO AP).

        Args:
            model: the task (built from the config, weights from ``ckpt_path``).
            datamodule: the data (validation images, calibration fallback).
            ckpt_path: the checkpoint to export (``last``: the newest run's ``last.ckpt``).
            format: ``onnx``, ``tensorrt`` (serialized engine) or ``torch_tensorrt``.
            precision: ``fp32``, ``fp16`` or ``int8`` (Q/DQ, calibrated on real frames).
            input_size: ``H W``, multiples of 32 (default: the data's evaluation size).
            batch: batch size (fixed unless ``dynamic``).
            dynamic: dynamic batch, height and width.
            output: folder of the files (default: ``exports`` in the checkpoint's run folder).
            name: file name stem (default: model and input size, e.g. ``rtdetr_1088x1920``).
            val_images: validation images to compare the export with PyTorch on (0: skip).
            calib: INT8 calibration: ``--calib.video``, ``--calib.images``, ``--calib.num_frames``
                (default: frames of the training split).
            allow_tf32: let TensorRT use TF32 (off: FP16/TF32 builds lose RT-DETR accuracy).
            device: where validation runs (default: CUDA for TensorRT forms, else CPU).
            target_fps: choose the most accurate precision and format that reaches this FPS
                on this machine instead of ``format``/``precision``.

        Returns:
            The export report.
        """
        from neo.deploy.export import ExportRequest, export_detector, load_weights

        checkpoint = load_weights(model, datamodule, ckpt_path)
        request = ExportRequest(
            format=format,
            precision=precision,
            input_size=tuple(input_size) if input_size else None,
            batch=batch,
            dynamic=dynamic,
            output=output,
            name=name,
            val_images=val_images,
            calib=calib or CalibrationConfig(),
            allow_tf32=allow_tf32,
            device=device,
        )
        if target_fps is None:
            return export_detector(model, request, datamodule, checkpoint)
        from neo.deploy.export import default_output, fps_candidates
        from neo.deploy.fps import available_forms, default_device, optimize_for_fps

        if checkpoint is None:
            raise ValueError("--target_fps needs the trained model: give --ckpt_path")
        device = device or default_device()
        folder = output or default_output(checkpoint) / "target_fps"
        candidates = fps_candidates(
            checkpoint,
            folder,
            available_forms(device),
            calib.video if calib else None,
            device,
            datamodule,
            val_images,
        )
        video = calib.video if calib else None
        return optimize_for_fps(checkpoint, target_fps, video, folder, None, candidates, device)


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
