"""The deployment contract: what an exported neo model takes and returns, kept in a JSON sidecar.

Every file ``neo export`` writes (``model.onnx``, ``model.engine``, ``model.ep``) gets a sidecar
with the same stem and ``.json`` (``model.json``) holding a :class:`DeploySpec`. Input
``images``: float32 (B, 3, H, W) RGB in [0, 1], letterboxed like neo's evaluation transform
(fit inside keeping the aspect ratio, pad bottom/right with grey 114) or, for spectrogram
detectors, stretched to the input size. Outputs: ``boxes`` (B, N, 4) xyxy in input pixels,
``scores`` (B, N) and ``labels`` (B, N) int64 contiguous training labels (rows past an image's
detections: score 0, label -1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from neo.data.transforms import PAD_VALUE
from neo.inference.spec import InferenceSpec
from neo.utils.atomic import write_json

Format = Literal["onnx", "torch_tensorrt", "tensorrt"]
Precision = Literal["fp32", "fp16", "int8"]
FORMATS: tuple[str, ...] = ("onnx", "torch_tensorrt", "tensorrt")
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
SUFFIXES = {"onnx": ".onnx", "tensorrt": ".engine", "torch_tensorrt": ".ep"}
INPUT_NAME = "images"
OUTPUT_NAMES = ("boxes", "scores", "labels")
CONTRACT_VERSION = 1


@dataclass
class DeploySpec:
    """The sidecar of an exported model.

    Attributes:
        format: ``onnx``, ``tensorrt`` (serialized engine) or ``torch_tensorrt`` (saved
            ``torch.export`` program).
        precision: ``fp32``, ``fp16`` or ``int8``.
        inference: the checkpoint's inference spec (task class, classes, input size, resize mode,
            spectrogram settings).
        input_size: ``(height, width)`` the model was exported at (multiples of 32).
        batch: batch size of the export (the only one unless ``dynamic_batch``).
        dynamic_batch: the batch dimension is dynamic.
        dynamic_size: height and width are dynamic (any multiple of 32).
        source: the checkpoint it was exported from.
        quantization: INT8 details (method, calibration source and count, layers kept in float),
            ``None`` otherwise.
        extra: format-specific details (opset, TensorRT version, TF32, ...).
    """

    format: str
    precision: str
    inference: InferenceSpec
    input_size: tuple[int, int]
    batch: int = 1
    dynamic_batch: bool = False
    dynamic_size: bool = False
    source: str | None = None
    quantization: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unknown format {self.format!r} (one of {', '.join(FORMATS)})")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"unknown precision {self.precision!r} (one of {', '.join(PRECISIONS)})"
            )
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))

    @property
    def model_class(self) -> str:
        """Import path of the task class the model was trained as."""
        return self.inference.task_class

    def preprocessing(self) -> dict[str, Any]:
        """How a frame becomes the ``images`` input."""
        letterbox = self.inference.resize == "letterbox"
        return {
            "color": "RGB",
            "dtype": "float32",
            "range": [0.0, 1.0],
            "layout": "NCHW",
            "resize": self.inference.resize,
            "description": (
                "fit inside the input size keeping the aspect ratio, pad bottom/right"
                if letterbox
                else "resize both sides to the input size (area interpolation)"
            ),
            "pad_value": PAD_VALUE / 255.0 if letterbox else None,
            "size_divisor": self.inference.size_divisor,
        }

    def to_dict(self) -> dict[str, Any]:
        """The sidecar's JSON content."""
        spec = self.inference
        return {
            "contract_version": CONTRACT_VERSION,
            "model_class": spec.task_class,
            "format": self.format,
            "precision": self.precision,
            "classes": [
                {"label": i, "category_id": cid, "name": name}
                for i, (cid, name) in enumerate(zip(spec.category_ids, spec.class_names))
            ],
            "input": {
                "name": INPUT_NAME,
                "shape": [
                    "batch" if self.dynamic_batch else self.batch,
                    3,
                    "height" if self.dynamic_size else self.input_size[0],
                    "width" if self.dynamic_size else self.input_size[1],
                ],
                "size": list(self.input_size),
                "batch": self.batch,
                "dynamic_batch": self.dynamic_batch,
                "dynamic_size": self.dynamic_size,
            },
            "preprocessing": self.preprocessing(),
            "outputs": {
                "boxes": "float32 (B, N, 4) xyxy in input pixels",
                "scores": "float32 (B, N), rows past an image's detections are 0",
                "labels": "int64 (B, N) training labels 0..C-1 (see classes), -1 on padding rows",
            },
            "max_detections": self.extra.get("max_detections"),
            "inference_spec": spec.to_dict(),
            "source": self.source,
            "quantization": self.quantization,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploySpec:
        """The spec of a sidecar written by :meth:`to_dict` (``ValueError`` names the problem)."""
        try:
            return cls(
                format=data["format"],
                precision=data["precision"],
                inference=InferenceSpec.from_dict(data["inference_spec"]),
                input_size=tuple(data["input"]["size"]),
                batch=int(data["input"]["batch"]),
                dynamic_batch=bool(data["input"]["dynamic_batch"]),
                dynamic_size=bool(data["input"]["dynamic_size"]),
                source=data.get("source"),
                quantization=data.get("quantization"),
                extra=dict(data.get("extra") or {}),
            )
        except (KeyError, TypeError, IndexError) as e:
            raise ValueError(f"not a neo deployment sidecar (missing or bad {e})") from None


def sidecar_path(model_path: Path | str) -> Path:
    """``model.onnx`` -> ``model.json``."""
    return Path(model_path).with_suffix(".json")


def write_sidecar(model_path: Path | str, spec: DeploySpec) -> Path:
    """Writes the sidecar next to ``model_path`` atomically; returns its path."""
    path = sidecar_path(model_path)
    write_json(path, spec.to_dict(), indent=2)
    return path


def read_sidecar(model_path: Path | str) -> DeploySpec:
    """The sidecar of an exported model.

    Raises:
        FileNotFoundError: no sidecar next to the model.
        ValueError: the sidecar is not valid JSON or not a neo sidecar (the message names it).
    """
    path = sidecar_path(model_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no sidecar next to {Path(model_path).name} (export the model with neo export)"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable sidecar ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a neo deployment sidecar")
    try:
        return DeploySpec.from_dict(data)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def spec_as_json(spec: DeploySpec) -> str:
    """The sidecar as one JSON string (also stored in the ONNX model's metadata)."""
    return json.dumps(spec.to_dict(), sort_keys=True)


__all__ = [
    "FORMATS",
    "INPUT_NAME",
    "OUTPUT_NAMES",
    "PRECISIONS",
    "SUFFIXES",
    "DeploySpec",
    "read_sidecar",
    "sidecar_path",
    "spec_as_json",
    "write_sidecar",
]
