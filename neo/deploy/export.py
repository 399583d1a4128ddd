"""``neo export``: a trained detector to ONNX, TensorRT or Torch-TensorRT, validated on real images.

Every form starts from the task's inference contract (:mod:`neo.deploy.onnx_export`): the FP32
ONNX model is always written (it is the base of the FP16, INT8 and TensorRT forms), INT8 comes
from explicit Q/DQ quantisation calibrated on real frames (:mod:`neo.deploy.quantize`), and
TensorRT forms are built from those graphs (:mod:`neo.deploy.tensorrt`). Everything is written
in a staging folder inside ``output`` and moved into place only once every file is written and
validated, so a failed export leaves nothing behind. ``export_report.json`` holds, for every
file, the maximum output difference to PyTorch and the COCO AP of both on the same validation
images.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from neo.deploy.contract import (
    FORMATS,
    PRECISIONS,
    SUFFIXES,
    DeploySpec,
    spec_as_json,
    write_sidecar,
)
from neo.deploy.onnx_export import check_input_size, export_onnx
from neo.deploy.onnx_fp16 import to_fp16_onnx
from neo.deploy.options import CalibrationConfig
from neo.tasks.detection import DetectionTask
from neo.utils.atomic import check_writable, staging_folder, write_json

REPORT_NAME = "export_report.json"
# the most an FP32 ONNX model's AP may differ from PyTorch's on the same images
FP32_AP_TOLERANCE = 0.002
SUPPORTED = {
    "onnx": ("fp32", "fp16", "int8"),
    "tensorrt": ("fp32", "fp16", "int8"),
    "torch_tensorrt": ("fp32", "fp16"),
}


@dataclass
class ExportRequest:
    """What ``neo export`` is asked to produce.

    Attributes:
        format: ``onnx``, ``tensorrt`` (serialized engine built from the ONNX graph) or
            ``torch_tensorrt`` (a compiled ``torch.export`` program).
        precision: ``fp32``, ``fp16`` or ``int8``.
        input_size: ``(height, width)``, multiples of 32 (default: the data's evaluation size).
        batch: batch size (the fixed one, and the optimum of a dynamic TensorRT profile).
        dynamic: dynamic height/width, and batch where the model allows it.
        output: folder of the exported files (default: ``exports`` next to the checkpoint's run).
        name: file name stem (default: the model's short name and the input size).
        val_images: validation images the exported model is checked on (0: no AP check).
        calib: INT8 calibration frames and method.
        allow_tf32: let TensorRT use TF32 in FP32/FP16 layers (off by default: FP16/TF32 builds
            are a known RT-DETR accuracy trap).
        device: where validation runs (default: CUDA when available and needed).
    """

    format: str = "onnx"
    precision: str = "fp32"
    input_size: tuple[int, int] | None = None
    batch: int = 1
    dynamic: bool = False
    output: Path | None = None
    name: str | None = None
    val_images: int = 32
    calib: CalibrationConfig = field(default_factory=CalibrationConfig)
    allow_tf32: bool = False
    device: str | None = None


def check_combination(format: str, precision: str) -> None:
    """Raises a one-line ``ValueError`` for an unknown format, precision or pair of them."""
    if format not in FORMATS:
        raise ValueError(f"--format {format}: unknown (one of {', '.join(FORMATS)})")
    if precision not in PRECISIONS:
        raise ValueError(f"--precision {precision}: unknown (one of {', '.join(PRECISIONS)})")
    if precision not in SUPPORTED[format]:
        raise ValueError(
            f"--format {format} --precision {precision}: not supported (INT8 for TensorRT comes "
            "from a Q/DQ ONNX graph: use --format tensorrt --precision int8)"
        )


def default_output(checkpoint: Path | None) -> Path:
    """``<run>/exports`` for ``<run>/checkpoints/x.ckpt``, else ``exports`` beside the file."""
    if checkpoint is None:
        return Path("exports")
    checkpoint = Path(checkpoint)
    parent = checkpoint.parent
    return (parent.parent if parent.name == "checkpoints" else parent) / "exports"


def short_name(task: DetectionTask) -> str:
    """``RTDETRTask`` -> ``rtdetr``."""
    name = type(task).__name__
    return (name[: -len("Task")] if name.endswith("Task") else name).lower()


def require_backend(format: str) -> None:
    """Fails fast, before anything is written, when the format's library or GPU is missing."""
    if format == "onnx":
        return
    from neo.deploy import tensorrt

    if format == "tensorrt":
        tensorrt.require_tensorrt()
    else:
        tensorrt.require_torch_tensorrt()
    tensorrt.require_gpu()


def file_entry(path: Path, spec: DeploySpec) -> dict[str, Any]:
    """The report's description of one written file."""
    return {
        "file": path.name,
        "format": spec.format,
        "precision": spec.precision,
        "size_MB": round(path.stat().st_size / 2**20, 2),
        "sidecar": path.with_suffix(".json").name,
    }


class Exporter:
    """Writes the files of one :class:`ExportRequest` for one task, then validates them.

    Args:
        task: the trained task (weights loaded, inference spec set).
        request: what to produce.
        datamodule: the data module (validation images, ground truth, calibration fallback).
        checkpoint: the checkpoint the weights came from (recorded in the sidecars).
    """

    def __init__(
        self,
        task: DetectionTask,
        request: ExportRequest,
        datamodule: Any | None = None,
        checkpoint: Path | None = None,
    ) -> None:
        check_combination(request.format, request.precision)
        self.task = task.eval()
        self.request = request
        self.datamodule = datamodule
        self.checkpoint = Path(checkpoint) if checkpoint else None
        size = request.input_size or task.inference_spec.input_size
        if size is None:
            raise ValueError("--input_size is needed: the model records no evaluation size")
        self.input_size = check_input_size(size, task.size_divisor)
        self.output = Path(request.output) if request.output else default_output(self.checkpoint)
        self.stem = request.name or f"{short_name(task)}_{self.input_size[0]}x{self.input_size[1]}"
        self.files: list[tuple[Path, DeploySpec]] = []
        self.notes: list[str] = []

    # ------------------------------------------------------------------ files
    def spec(self, format: str, precision: str, **changes: Any) -> DeploySpec:
        """The sidecar of one file of this export."""
        tracer_dynamic_batch = self.request.dynamic and self.task.export_tracer == "dynamo"
        return DeploySpec(
            format=format,
            precision=precision,
            inference=replace(self.task.inference_spec, task_class=self.task.class_path()),
            input_size=self.input_size,
            batch=self.request.batch,
            dynamic_batch=tracer_dynamic_batch,
            dynamic_size=self.request.dynamic,
            source=str(self.checkpoint) if self.checkpoint else None,
            extra={"max_detections": self.task.max_detections},
            **changes,
        )

    def _add(self, path: Path, spec: DeploySpec) -> None:
        write_sidecar(path, spec)
        self.files.append((path, spec))

    def _export_fp32_onnx(self, folder: Path) -> Path:
        path = folder / f"{self.stem}_fp32.onnx"
        spec = self.spec("onnx", "fp32")
        info = export_onnx(
            self.task,
            path,
            self.input_size,
            self.request.batch,
            self.request.dynamic,
            metadata={"neo_contract": spec_as_json(spec)},
        )
        if self.request.dynamic and not info["dynamic_batch"]:
            self.notes.append(
                f"{type(self.task).__name__} exports with a fixed batch of {self.request.batch} "
                "(torchvision's per-image post-processing); height and width are dynamic"
            )
        spec.extra.update(info)
        self._add(path, spec)
        return path

    def _int8_onnx(self, folder: Path, fp32_onnx: Path, method: str) -> Path:
        from neo.deploy.calibration import collect_calibration
        from neo.deploy.preprocess import FramePreprocessor
        from neo.deploy.quantize import quantize_int8

        preprocessor = FramePreprocessor(self.task.inference_spec, self.input_size)
        fallback = getattr(self.datamodule, "calibration_frames", None)
        frames, source = collect_calibration(self.request.calib, preprocessor, fallback)
        path = folder / f"{self.stem}_int8.onnx"
        quantization = quantize_int8(
            fp32_onnx,
            path,
            frames,
            method=method,
            task=self.task,
            input_size=self.input_size,
            batch=self.request.batch,
            dynamic=self.request.dynamic,
            algorithm=self.request.calib.algorithm,
            metadata={"neo_contract": spec_as_json(self.spec("onnx", "int8"))},
        )
        quantization = {**quantization, "calibration": source}
        spec = self.spec("onnx", "int8", quantization=quantization)
        spec.extra.update(self.files[0][1].extra)
        self._add(path, spec)
        return path

    def _fp16_onnx(self, folder: Path, fp32_onnx: Path) -> Path:
        path = folder / f"{self.stem}_fp16.onnx"
        info = to_fp16_onnx(fp32_onnx, path)
        spec = self.spec("onnx", "fp16")
        spec.extra["fp16"] = info
        spec.extra.update(self.files[0][1].extra)
        self._add(path, spec)
        return path

    def write(self, folder: Path) -> None:
        """Writes every file of the request (and the sidecars) into ``folder``."""
        request = self.request
        if request.format == "torch_tensorrt":
            from neo.deploy.tensorrt import compile_torch_tensorrt

            path = folder / f"{self.stem}_{request.precision}{SUFFIXES['torch_tensorrt']}"
            info = compile_torch_tensorrt(
                self.task,
                path,
                request.precision,
                self.input_size,
                request.batch,
                request.dynamic,
                allow_tf32=request.allow_tf32,
            )
            spec = self.spec("torch_tensorrt", request.precision)
            spec.extra.update(info)
            self._add(path, spec)
            return
        fp32 = self._export_fp32_onnx(folder)
        graph = fp32
        if request.precision == "int8":
            method = request.calib.resolved_method(request.format)
            graph = self._int8_onnx(folder, fp32, method)
        elif request.precision == "fp16":
            graph = self._fp16_onnx(folder, fp32)
        if request.format == "tensorrt":
            from neo.deploy.tensorrt import build_engine

            path = folder / f"{self.stem}_{request.precision}{SUFFIXES['tensorrt']}"
            info = build_engine(
                graph,
                path,
                precision=request.precision,
                input_size=self.input_size,
                batch=request.batch,
                dynamic=request.dynamic,
                allow_tf32=request.allow_tf32,
            )
            spec = self.spec(
                "tensorrt", request.precision, quantization=self.files[-1][1].quantization
            )
            spec.extra.update(info)
            self._add(path, spec)

    # ------------------------------------------------------------------ validation
    def device(self) -> torch.device:
        """Where validation runs: the request's device, CUDA for TensorRT forms, else CPU."""
        if self.request.device:
            return torch.device(self.request.device)
        if self.request.format != "onnx":
            return torch.device("cuda")
        return torch.device("cpu")

    def validate(self) -> dict[str, Any]:
        """Output difference and AP of every written file against PyTorch (the report's part)."""
        from neo.deploy.preprocess import FramePreprocessor
        from neo.deploy.runtime import load_model
        from neo.deploy.validate import compare_models, headline, run_on_set, validation_set

        count = self.request.val_images
        if count <= 0 or self.datamodule is None or not hasattr(self.datamodule, "ground_truth"):
            self.notes.append("no validation images: outputs and AP were not checked")
            return {}
        preprocessor = FramePreprocessor(self.task.inference_spec, self.input_size)
        data = validation_set(
            self.datamodule, preprocessor, self.task.inference_spec.category_ids, count
        )
        device = self.device()
        task = self.task.to(device)
        batch = self.request.batch

        def reference(images: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return task(images.to(device))

        ref_run = run_on_set(reference, data, batch)
        results: dict[str, Any] = {
            "images": len(data),
            "device": str(device),
            "pytorch": {**headline(ref_run[1]), "seconds_per_batch": round(ref_run[2], 5)},
            "files": {},
        }
        for path, spec in self.files:
            model = load_model(path, device)
            entry = compare_models(ref_run, model, data, batch)
            if spec.precision == "fp32" and abs(entry["ap_delta"]) > FP32_AP_TOLERANCE:
                self.notes.append(
                    f"{path.name}: AP differs from PyTorch by {entry['ap_delta']:+.4f} (more "
                    f"than {FP32_AP_TOLERANCE})"
                )
            results["files"][path.name] = entry
        task.cpu()
        return results

    # ------------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        """Writes, validates and moves the files into ``output``; returns the report."""
        require_backend(self.request.format)
        output = check_writable(self.output)
        staging = staging_folder(output, ".export-")
        started = time.perf_counter()
        try:
            self.write(staging)
            validation = self.validate()
            report = {
                "checkpoint": str(self.checkpoint) if self.checkpoint else None,
                "model_class": self.task.class_path(),
                "format": self.request.format,
                "precision": self.request.precision,
                "input_size": list(self.input_size),
                "batch": self.request.batch,
                "dynamic": self.request.dynamic,
                "files": [file_entry(path, spec) for path, spec in self.files],
                "validation": validation,
                "notes": self.notes,
                "seconds": round(time.perf_counter() - started, 1),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            write_json(staging / REPORT_NAME, report, indent=2)
            for path in sorted(staging.iterdir()):
                os.replace(path, output / path.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.files = [(output / path.name, spec) for path, spec in self.files]
        report["output"] = str(output)
        return report


def load_weights(task: Any, datamodule: Any | None, ckpt_path: str | Path | None) -> Path | None:
    """Prepares a config-built task for export: classes from the data, weights from the file.

    Args:
        task: the task built from the config (with the checkpoint's hyper-parameters).
        datamodule: its data module; gives the classes and the evaluation size.
        ckpt_path: the checkpoint (``None``: the task's initial weights, with a warning).

    Returns:
        The checkpoint's path.

    Raises:
        ValueError: not a neo detection task, a name Lightning resolves only while fitting, or an
            unreadable or mismatching checkpoint.
    """
    import warnings

    from neo.utils.checkpoint_io import CheckpointError, read_checkpoint

    if not isinstance(task, DetectionTask):
        raise ValueError(f"{type(task).__name__} is not a neo detection task: nothing to export")
    if datamodule is not None:
        task.take_data_spec(datamodule)
    if ckpt_path is None:
        warnings.warn(
            "no --ckpt_path: exporting the model's initial weights", UserWarning, stacklevel=2
        )
        return None
    if str(ckpt_path) in ("best", "hpc", "registry"):
        raise ValueError(f"--ckpt_path {ckpt_path}: give the checkpoint file to export (or last)")
    path = Path(ckpt_path)
    checkpoint = read_checkpoint(path)
    try:
        task.on_load_checkpoint(checkpoint)
        task.load_state_dict(checkpoint.get("state_dict") or {})
    except (RuntimeError, ValueError) as e:
        reason = str(e).strip().split("\n", 1)[0][:200]
        raise CheckpointError(f"{path}: does not fit {task.class_path()} ({reason})") from None
    return path


def export_detector(
    task: DetectionTask,
    request: ExportRequest,
    datamodule: Any | None = None,
    checkpoint: Path | None = None,
) -> dict[str, Any]:
    """Exports ``task`` as ``request`` asks, validates it and prints the summary.

    Returns:
        The content of ``export_report.json`` plus ``output`` (the folder).
    """
    report = Exporter(task, request, datamodule, checkpoint).run()
    print_report(report)
    return report


def print_report(report: dict[str, Any]) -> None:
    """The export's files with their AP against PyTorch, as a table on the console."""
    from rich.console import Console
    from rich.table import Table

    validation = report.get("validation") or {}
    pytorch = validation.get("pytorch") or {}
    table = Table(title=f"neo export -> {report['output']}")
    for column in ("file", "MB", "AP", "AP50", "ΔAP vs PyTorch", "max |Δbox| px", "ms/batch"):
        table.add_column(column, justify="left" if column == "file" else "right")
    if pytorch:
        table.add_row(
            "PyTorch (checkpoint)",
            "",
            f"{pytorch.get('AP', 0):.4f}",
            f"{pytorch.get('AP50', 0):.4f}",
            "",
            "",
            f"{1000 * pytorch.get('seconds_per_batch', 0):.1f}",
        )
    files = validation.get("files") or {}
    for entry in report["files"]:
        checked = files.get(entry["file"])
        if checked is None:
            table.add_row(entry["file"], f"{entry['size_MB']:.1f}", "", "", "", "", "")
            continue
        exported = checked["exported"]
        table.add_row(
            entry["file"],
            f"{entry['size_MB']:.1f}",
            f"{exported.get('AP', 0):.4f}",
            f"{exported.get('AP50', 0):.4f}",
            f"{checked['ap_delta']:+.4f}",
            f"{checked['difference']['boxes_max_abs_confident']:.3g}",
            f"{1000 * exported.get('seconds_per_batch', 0):.1f}",
        )
    console = Console(width=max(Console().width, 120))
    console.print(table)
    if validation:
        console.print(f"validated on {validation['images']} images ({validation['device']})")
    for note in report.get("notes") or []:
        console.print(f"note: {note}")
    console.print(f"report: {Path(report['output']) / REPORT_NAME}")


def fps_candidates(
    model_path: Path,
    output: Path,
    forms: list[tuple[str, str]],
    video_path: Path | str | None = None,
    device: str = "cpu",
    datamodule: Any | None = None,
    val_images: int = 32,
) -> list[Any]:
    """The forms :func:`neo.deploy.fps.optimize_for_fps` tries, exported and scored by neo's code.

    Every form is exported by :class:`Exporter` into ``output/<format>_<precision>`` (INT8
    calibrated on the video when there is one, else on the training split), and scored by its
    COCO AP on the same validation images.

    Args:
        model_path: the checkpoint.
        output: the folder of the candidates.
        forms: ``(format, precision)`` pairs; format ``pytorch`` is the checkpoint itself.
        video_path: calibration frames for INT8.
        device: where the AP is measured.
        datamodule: the validation data (default: rebuilt from the ``config.yaml`` of the
            checkpoint's run folder).
        val_images: validation images.

    Raises:
        ValueError: no data module and no run config to rebuild it from.
    """
    from neo.deploy.fps import Candidate
    from neo.deploy.preprocess import FramePreprocessor
    from neo.deploy.runtime import load_model
    from neo.deploy.validate import run_on_set, validation_set
    from neo.inference.loading import load_detector

    model_path = Path(model_path)
    task = load_detector(model_path).task
    if datamodule is None:
        datamodule = datamodule_of_run(model_path)
    size = task.inference_spec.input_size
    if size is None:
        raise ValueError(f"{model_path}: the checkpoint records no input size")
    preprocessor = FramePreprocessor(task.inference_spec, size)
    data = validation_set(datamodule, preprocessor, task.inference_spec.category_ids, val_images)
    calib = CalibrationConfig(video=Path(video_path)) if video_path else CalibrationConfig()

    def evaluate(path: Path) -> float:
        model = load_model(path, device)
        return float(run_on_set(model, data, model.fixed_batch or 1)[1]["AP"])

    def builder(format: str, precision: str) -> Any:
        def build() -> Path:
            if format == "pytorch":
                return model_path
            request = ExportRequest(
                format=format,
                precision=precision,
                output=Path(output) / f"{format}_{precision}",
                val_images=0,
                calib=calib,
                device=device,
            )
            exporter = Exporter(task, request, datamodule, model_path)
            exporter.run()
            wanted = [p for p, s in exporter.files if s.format == format]
            return [p for p in wanted if p.name.endswith(f"_{precision}{p.suffix}")][-1]

        return build

    return [
        Candidate(f"{format}-{precision}", format, precision, builder(format, precision), evaluate)
        for format, precision in forms
    ]


def datamodule_of_run(checkpoint: Path) -> Any:
    """The data module of the run a checkpoint belongs to, from the run's ``config.yaml``."""
    import yaml
    from jsonargparse import ArgumentParser
    from lightning import LightningDataModule

    checkpoint = Path(checkpoint)
    for folder in (checkpoint.parent, checkpoint.parent.parent):
        config = folder / "config.yaml"
        if not config.is_file():
            continue
        data = (yaml.safe_load(config.read_text()) or {}).get("data")
        if not data:
            break
        parser = ArgumentParser(exit_on_error=False)
        parser.add_subclass_arguments(LightningDataModule, "data")
        return parser.instantiate_classes(parser.parse_object({"data": data})).data
    raise ValueError(
        f"{checkpoint}: no config.yaml with a data section in its run folder; use "
        "neo export --config ... --ckpt_path ... --target_fps F"
    )


__all__ = ["ExportRequest", "check_combination", "export_detector", "fps_candidates"]
