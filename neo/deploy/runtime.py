"""One calling convention for every deployed form of a detector.

:func:`load_model` opens a neo checkpoint (``.ckpt``, PyTorch eager), an ONNX model (``.onnx``,
ONNX Runtime), a TensorRT engine (``.engine``/``.plan``) or a Torch-TensorRT program (``.ep``)
as a :class:`DeployedModel`: ``model(images)`` takes the contract's float32 (B, 3, H, W) RGB
images in [0, 1] and returns ``boxes`` (B, N, 4), ``scores`` (B, N), ``labels`` (B, N) as torch
tensors (see :mod:`neo.deploy.contract`). Validation, ``neo benchmark``, precision selection and
``neo rf detect`` all call models this way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from neo.deploy.contract import INPUT_NAME, OUTPUT_NAMES, DeploySpec, read_sidecar
from neo.inference.spec import InferenceSpec

CHECKPOINT_SUFFIXES = (".ckpt",)
ONNX_SUFFIXES = (".onnx",)
ENGINE_SUFFIXES = (".engine", ".plan")
PROGRAM_SUFFIXES = (".ep",)
MODEL_SUFFIXES = (*CHECKPOINT_SUFFIXES, *ONNX_SUFFIXES, *ENGINE_SUFFIXES, *PROGRAM_SUFFIXES)


class DeployedModel:
    """A detector in one deployed form, called with the contract's float images.

    Attributes:
        path: the model file.
        name: its file stem.
        backend: ``pytorch``, ``onnxruntime``, ``tensorrt`` or ``torch_tensorrt``.
        precision: ``fp32``, ``fp16`` or ``int8``.
        inference: the inference spec (classes, input size, resize mode, spectrogram settings).
        spec: the export sidecar (``None`` for a checkpoint).
        device: where inputs go and outputs come back.
    """

    backend = ""

    def __init__(
        self,
        path: Path,
        precision: str,
        inference: InferenceSpec,
        spec: DeploySpec | None,
        device: torch.device,
    ) -> None:
        self.path = Path(path)
        self.name = self.path.stem
        self.precision = precision
        self.inference = inference
        self.spec = spec
        self.device = device

    @property
    def input_size(self) -> tuple[int, int]:
        """``(height, width)`` the model expects (its export size, else its evaluation size)."""
        if self.spec is not None:
            return self.spec.input_size
        if self.inference.input_size is None:
            raise ValueError(f"{self.path}: the checkpoint records no input size")
        return self.inference.input_size

    @property
    def fixed_batch(self) -> int | None:
        """The only batch size the model runs, or ``None`` when any batch runs."""
        if self.spec is None or self.spec.dynamic_batch:
            return None
        return self.spec.batch

    def run(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The backend's call on a batch of the model's fixed batch size."""
        raise NotImplementedError

    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Detections of float32 images (B, 3, H, W) in [0, 1] (any B: split or padded to fit)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        batch = self.fixed_batch
        if batch is None or images.shape[0] == batch:
            return self.run(images)
        parts = []
        for start in range(0, images.shape[0], batch):
            chunk = images[start : start + batch]
            count = chunk.shape[0]
            if count < batch:
                chunk = torch.cat([chunk, chunk[-1:].expand(batch - count, -1, -1, -1)])
            parts.append([t[:count] for t in self.run(chunk)])
        return tuple(torch.cat(list(ts)) for ts in zip(*parts))  # type: ignore[return-value]

    def describe(self) -> dict[str, Any]:
        """Name, backend, precision and input for tables and reports."""
        return {
            "name": self.name,
            "backend": self.backend,
            "precision": self.precision,
            "input_size": list(self.input_size),
            "path": str(self.path),
        }


class TorchModel(DeployedModel):
    """A neo checkpoint run by PyTorch (eager, float32), through the task's inference contract."""

    backend = "pytorch"

    def __init__(self, path: Path, device: torch.device) -> None:
        from neo.inference.loading import load_detector

        loaded = load_detector(path, device)
        super().__init__(path, "fp32", loaded.spec, None, device)
        self.task = loaded.task

    def run(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # noqa: D102
        return self.task(images.to(self.device))


def onnx_providers(device: torch.device) -> list[str]:
    """ONNX Runtime providers for ``device`` (CUDA only when it is there), CPU last."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    providers = []
    if device.type == "cuda" and "CUDAExecutionProvider" in available:
        providers.append("CUDAExecutionProvider")
    return [*providers, "CPUExecutionProvider"]


class OnnxRuntimeModel(DeployedModel):
    """An exported ONNX model run by ONNX Runtime.

    Args:
        path: the ``.onnx`` file (its sidecar next to it).
        device: ``cpu``, or ``cuda`` to use ONNX Runtime's CUDA provider when installed.
        threads: intra-op threads (default: ONNX Runtime's choice, or ``$NEO_ORT_THREADS``).
    """

    backend = "onnxruntime"

    def __init__(self, path: Path, device: torch.device, threads: int | None = None) -> None:
        import onnxruntime as ort

        spec = read_sidecar(path)
        super().__init__(path, spec.precision, spec.inference, spec, device)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        threads = threads or int(os.environ.get("NEO_ORT_THREADS", "0") or 0)
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=onnx_providers(device)
            )
        except Exception as e:  # onnxruntime raises its own exception types
            reason = str(e).strip().split("\n", 1)[0][:200]
            raise ValueError(f"{path}: ONNX Runtime cannot load the model ({reason})") from None

    def run(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # noqa: D102
        array = np.ascontiguousarray(images.detach().float().cpu().numpy())
        outputs = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: array})
        boxes, scores, labels = (torch.from_numpy(np.asarray(o)) for o in outputs)
        return boxes.to(self.device), scores.to(self.device), labels.long().to(self.device)


def load_model(path: Path | str, device: str | torch.device = "cpu") -> DeployedModel:
    """Opens a checkpoint or an exported model by its suffix.

    Args:
        path: ``.ckpt``, ``.onnx``, ``.engine``/``.plan`` or ``.ep`` (exported files need their
            ``neo export`` sidecar next to them).
        device: ``cpu`` or ``cuda`` (TensorRT and Torch-TensorRT need a GPU).

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unknown suffix, a missing backend or GPU, or an unloadable file; the
            message names the file.
    """
    path = Path(path)
    device = torch.device(device)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    suffix = path.suffix.lower()
    if suffix in CHECKPOINT_SUFFIXES:
        return TorchModel(path, device)
    if suffix in ONNX_SUFFIXES:
        return OnnxRuntimeModel(path, device)
    if suffix in ENGINE_SUFFIXES:
        from neo.deploy.tensorrt import TensorRTModel

        return TensorRTModel(path, device)
    if suffix in PROGRAM_SUFFIXES:
        from neo.deploy.tensorrt import TorchTensorRTModel

        return TorchTensorRTModel(path, device)
    raise ValueError(
        f"{path}: unknown model type {suffix or '(no suffix)'} (expected one of "
        f"{', '.join(MODEL_SUFFIXES)})"
    )
