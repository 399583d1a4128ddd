"""Export the best checkpoint when training ends, configured in the trainer's YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from neo.deploy.options import CalibrationConfig


class ExportOnFitEnd(Callback):
    """Exports the best checkpoint (else the last weights) with ``neo export``'s code path.

    Runs once, on global rank zero, after ``fit``: the best checkpoint of the trainer's
    ``ModelCheckpoint`` is loaded into a fresh task, exported, validated on the data module's
    validation images and reported (``export_report.json`` in ``output``).

    Args:
        format: ``onnx``, ``tensorrt`` or ``torch_tensorrt``.
        precision: ``fp32``, ``fp16`` or ``int8``.
        input_size: ``(height, width)``, multiples of 32 (default: the evaluation size).
        batch: batch size.
        dynamic: dynamic batch, height and width.
        output: folder of the files (default: ``exports`` in the run folder).
        val_images: validation images the export is checked on.
        calib: INT8 calibration (default: frames of the training split).
        allow_tf32: let TensorRT use TF32.
    """

    def __init__(
        self,
        format: Literal["onnx", "torch_tensorrt", "tensorrt"] = "onnx",
        precision: Literal["fp32", "fp16", "int8"] = "fp32",
        input_size: tuple[int, int] | None = None,
        batch: int = 1,
        dynamic: bool = False,
        output: Path | None = None,
        val_images: int = 32,
        calib: CalibrationConfig | None = None,
        allow_tf32: bool = False,
    ) -> None:
        from neo.deploy.export import ExportRequest, check_combination

        check_combination(format, precision)
        self.request = ExportRequest(
            format=format,
            precision=precision,
            input_size=tuple(input_size) if input_size else None,
            batch=batch,
            dynamic=dynamic,
            output=Path(output) if output else None,
            val_images=val_images,
            calib=calib or CalibrationConfig(),
            allow_tf32=allow_tf32,
        )
        self.report: dict[str, Any] | None = None

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        if not trainer.is_global_zero or trainer.fast_dev_run or trainer.interrupted:
            return
        from dataclasses import replace

        from neo.deploy.export import export_detector
        from neo.inference.loading import load_detector

        callback = trainer.checkpoint_callback
        best = Path(getattr(callback, "best_model_path", "") or "")
        if best.is_file():
            task = load_detector(best).task
            checkpoint: Path | None = best
        else:
            rank_zero_warn("ExportOnFitEnd: no best checkpoint; exporting the final weights")
            task, checkpoint = pl_module, None
        request = self.request
        if request.output is None:
            run_dir = Path(trainer.log_dir or trainer.default_root_dir)
            request = replace(request, output=run_dir / "exports")
        rank_zero_info(f"ExportOnFitEnd: exporting {checkpoint or 'the final weights'}")
        self.report = export_detector(task, request, trainer.datamodule, checkpoint)


class INT8Calibration(ExportOnFitEnd):
    """INT8 export at the end of ``fit``, calibrated on real frames (a video, images, or data).

    :class:`ExportOnFitEnd` with ``precision="int8"``; the report compares the FP32 and INT8
    models' AP on the same validation images.

    Args:
        calib: where the calibration frames come from and how many (default: the training split).
        format: ``onnx`` (Q/DQ model for ONNX Runtime and TensorRT) or ``tensorrt``.
        **kwargs: the other arguments of :class:`ExportOnFitEnd`.
    """

    def __init__(
        self,
        calib: CalibrationConfig | None = None,
        format: Literal["onnx", "tensorrt"] = "onnx",
        **kwargs: Any,
    ) -> None:
        super().__init__(format=format, precision="int8", calib=calib, **kwargs)
