"""INT8 as explicit Q/DQ quantisation, calibrated on real frames.

Two quantisers write a Q/DQ ONNX graph (TensorRT 11 has no implicit INT8 calibration):

- ``ort``: ONNX Runtime's static quantisation (``quantize_static``, QDQ format) of the FP32 ONNX
  model: INT8 per-channel weights, UINT8 activations with percentile (default) or min/max
  ranges. ONNX Runtime fuses these Q/DQ pairs into integer kernels, so this is the CPU path.
- ``modelopt``: NVIDIA ModelOpt (``mtq.quantize`` with ``INT8_DEFAULT_CFG`` and a forward loop
  over the calibration frames) on a copy of the PyTorch task, exported with the task's tracer:
  symmetric INT8 (zero point 0) Q/DQ, the form TensorRT builds. ONNX Runtime runs it on a CPU
  too, but without integer kernels for its signed activations it is slower than FP32 there.

Only weighted layers are quantised (:data:`QUANTIZED_OPS`: convolutions and matrix products);
element-wise arithmetic, box decoding, softmax, grid sampling and top-k stay in float. Of the
weighted layers, :data:`KEEP_FLOAT` stay in float: RT-DETR's class-score and box heads (encoder
and decoder), its query position head, and the deformable-attention sampling offsets and
attention weights. Measured on the demo RT-DETR (ONNX Runtime, 120 validation images, 96
calibration frames): quantising every operator costs 6.3 AP points (min/max ranges); every
weighted layer 0.4 (percentile); with the heads in float +0.1; with the heads and the sampling
projections in float +0.05 (ModelOpt: -0.04, and -0.3 with nothing kept in float). Faster R-CNN
keeps all its weighted layers quantised (its box predictor in float changes AP by less than the
noise), but quantising its element-wise operators (box decoding) costs 33 points.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from neo.deploy.contract import INPUT_NAME
from neo.utils.atomic import atomic_path

if TYPE_CHECKING:
    from neo.tasks.detection import DetectionTask

KEEP_FLOAT: tuple[str, ...] = (
    "enc_score_head",
    "enc_bbox_head",
    "dec_score_head",
    "dec_bbox_head",
    "query_pos_head",
    "sampling_offsets",
    "attention_weights",
)
QUANTIZED_OPS: tuple[str, ...] = ("Conv", "MatMul", "Gemm")
ALGORITHMS = {"percentile": "Percentile", "minmax": "MinMax"}
METHODS = ("ort", "modelopt")
# input pixels calibrated at once: bounds the activations ONNX Runtime's calibrator holds
# (about 1.2 kB per input pixel for RT-DETR-R18, so about 1.3 GB)
CALIBRATION_PIXELS = 2**20
QDQ_BACKEND = "neo_qdq"


def node_scope(node: Any) -> str:
    """A node's name and the module path the exporter recorded for it (``namespace``)."""
    namespaces = [p.value for p in node.metadata_props if p.key == "namespace"]
    return " ".join([node.name, *namespaces])


def float_nodes(model: Any, keep_float: Sequence[str] = KEEP_FLOAT) -> list[str]:
    """Names of the weighted nodes of an ONNX model that ``keep_float`` keeps in float.

    Args:
        model: the ONNX ``ModelProto``.
        keep_float: module-name fragments; a node matches when its name or module path holds one.
    """
    if not keep_float:
        return []
    pattern = re.compile("|".join(re.escape(name) for name in keep_float))
    return [
        node.name
        for node in model.graph.node
        if node.op_type in QUANTIZED_OPS and pattern.search(node_scope(node))
    ]


def fixed_batch(model: Any) -> int | None:
    """The batch size the ONNX model's ``images`` input is fixed to, or ``None`` when dynamic."""
    for value in model.graph.input:
        if value.name == INPUT_NAME:
            dim = value.type.tensor_type.shape.dim[0]
            return int(dim.dim_value) if dim.HasField("dim_value") else None
    raise ValueError(f"the ONNX model has no {INPUT_NAME!r} input")


def calibration_batches(calibration: Tensor, batch: int) -> list[np.ndarray]:
    """``calibration`` in batches of ``batch`` frames (the last one topped up from the first)."""
    frames = calibration.detach().float().cpu().numpy()
    if len(frames) % batch:
        extra = batch - len(frames) % batch
        frames = np.concatenate([frames, np.resize(frames, (extra, *frames.shape[1:]))])
    return [np.ascontiguousarray(frames[i : i + batch]) for i in range(0, len(frames), batch)]


def _chunk(count: int, pixels: int) -> int:
    """Largest divisor of ``count`` keeping a chunk within :data:`CALIBRATION_PIXELS`."""
    limit = max(1, CALIBRATION_PIXELS // max(1, pixels))
    return max(d for d in range(1, min(count, limit) + 1) if count % d == 0)


class _FrameReader:
    """ONNX Runtime calibration data over preprocessed batches, read a range at a time."""

    def __init__(self, batches: list[np.ndarray]) -> None:
        self.batches = batches
        self.start, self.end = 0, len(batches)

    def __len__(self) -> int:
        return len(self.batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.start, self.end = start_index, min(end_index, len(self.batches))

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.start >= self.end:
            return None
        self.start += 1
        return {INPUT_NAME: self.batches[self.start - 1]}


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Silences ONNX Runtime's advice to pre-process, logged on the root logger."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _set_metadata(model: Any, metadata: dict[str, str]) -> None:
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in metadata]
    del model.metadata_props[:]
    for key, value in [*kept, *metadata.items()]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def quantize_ort(
    fp32_onnx: Path,
    output: Path,
    calibration: Tensor,
    algorithm: str = "percentile",
    keep_float: Sequence[str] = KEEP_FLOAT,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """ONNX Runtime static Q/DQ quantisation of an FP32 ONNX model, written atomically.

    Args:
        fp32_onnx: the FP32 model (its dynamic axes stay dynamic).
        output: the INT8 ``.onnx`` file.
        calibration: float32 (N, 3, H, W) preprocessed frames.
        algorithm: activation ranges, ``percentile`` or ``minmax``.
        keep_float: module-name fragments of the weighted layers kept in float.
        metadata: strings stored in the output's ``metadata_props``, replacing the FP32
            model's entries of the same keys.

    Returns:
        What the sidecar records under ``quantization``.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if algorithm not in ALGORITHMS:
        raise ValueError(f"--calib.algorithm {algorithm}: one of {', '.join(ALGORITHMS)}")
    fp32_onnx, output = Path(fp32_onnx), Path(output)
    graph = onnx.load(str(fp32_onnx), load_external_data=False)
    excluded = float_nodes(graph, keep_float)
    batches = calibration_batches(calibration, fixed_batch(graph) or 1)
    frames_per_batch, _, height, width = batches[0].shape
    chunk = _chunk(len(batches), frames_per_batch * height * width)
    with (
        atomic_path(output) as tmp,
        tempfile.TemporaryDirectory(prefix="neo-int8-") as scratch,
        contextlib.redirect_stdout(io.StringIO()),
        _quiet_root_logger(),
    ):
        target = Path(scratch) / "int8.onnx"
        quantize_static(
            str(fp32_onnx),
            str(target),
            _FrameReader(batches),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(QUANTIZED_OPS),
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded,
            calibrate_method=getattr(CalibrationMethod, ALGORITHMS[algorithm]),
            extra_options={"CalibStridedMinMax": chunk},
        )
        model = onnx.load(str(target))
        _set_metadata(model, metadata or {})
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
    return {
        "method": "ort",
        "algorithm": algorithm,
        "frames": int(calibration.shape[0]),
        "weights": "int8 per channel",
        "activations": "uint8 per tensor",
        "quantized_ops": list(QUANTIZED_OPS),
        "kept_float": list(keep_float),
        "float_nodes": len(excluded),
    }


def _modelopt() -> Any:
    try:
        import modelopt.torch.quantization as mtq
    except ImportError as e:
        raise ValueError(
            f"NVIDIA ModelOpt cannot be imported ({e}); install neo's dependencies (uv sync) or "
            "use --calib.method ort"
        ) from None
    return mtq


def quantize_task_modelopt(
    task: DetectionTask, calibration: Tensor, keep_float: Sequence[str] = KEEP_FLOAT
) -> tuple[DetectionTask, dict[str, Any]]:
    """A copy of ``task`` with ModelOpt INT8 quantizers calibrated on ``calibration``.

    ``mtq.quantize(model, INT8_DEFAULT_CFG, forward_loop)`` over the frames (per-channel weights,
    per-tensor activations, max ranges); the layers named by ``keep_float`` are left in float and
    quantizers the frames never reach are switched off. The task itself is not changed.

    Returns:
        The quantised copy (on the CPU, in eval mode) and what the sidecar records.
    """
    mtq = _modelopt()
    from modelopt.torch.quantization.nn import TensorQuantizer

    quantized = copy.deepcopy(task).cpu().eval()
    config = copy.deepcopy(mtq.INT8_DEFAULT_CFG)
    for name in keep_float:
        config["quant_cfg"].append({"quantizer_name": f"*{name}*", "enable": False})
    frames = calibration.detach().float().cpu()
    height, width = frames.shape[-2:]
    step = max(1, min(8, CALIBRATION_PIXELS // (height * width)))

    def forward_loop(model: Any) -> None:
        with torch.no_grad():
            for start in range(0, len(frames), step):
                quantized.run_model(frames[start : start + step])

    with contextlib.redirect_stdout(io.StringIO()):
        mtq.quantize(quantized.model, config, forward_loop)
    active = 0
    for module in quantized.modules():
        if isinstance(module, TensorQuantizer) and module.is_enabled:
            if module.amax is None:
                module.disable()
            else:
                active += 1
    info = {
        "method": "modelopt",
        "config": "INT8_DEFAULT_CFG",
        "frames": int(frames.shape[0]),
        "weights": "int8 per channel",
        "activations": "int8 per tensor",
        "quantizers": active,
        "kept_float": list(keep_float),
    }
    return quantized, info


def _qdq_backend() -> None:
    """Registers (once) a ModelOpt quantizer backend made of PyTorch's quantize/dequantize ops.

    ``torch.export`` cannot trace ModelOpt's own fake quantisation on a CPU (it branches on the
    data), while ``quantized_decomposed`` ops export as ``QuantizeLinear``/``DequantizeLinear``.
    """
    import torch.ao.quantization.fx._decomposed  # defines the quantized_decomposed ops
    from modelopt.torch.quantization.nn.modules.tensor_quantizer import (
        is_registered_quant_backend,
        register_quant_backend,
    )

    if is_registered_quant_backend(QDQ_BACKEND):
        return
    ops = torch.ops.quantized_decomposed

    def qdq(inputs: Tensor, quantizer: Any) -> Tensor:
        args = quantizer.backend_extra_args
        x = inputs.float()
        if "scale" in args:
            scale = args["scale"]
            q = ops.quantize_per_tensor(x, scale, 0, -128, 127, torch.int8)
            y = ops.dequantize_per_tensor(q, scale, 0, -128, 127, torch.int8)
        else:
            scales, zeros, axis = args["scales"], args["zeros"], args["axis"]
            q = ops.quantize_per_channel(x, scales, zeros, axis, -128, 127, torch.int8)
            y = ops.dequantize_per_channel(q, scales, zeros, axis, -128, 127, torch.int8)
        return y.to(inputs.dtype)

    register_quant_backend(QDQ_BACKEND, qdq)


@contextlib.contextmanager
def qdq_export(task: DetectionTask) -> Iterator[None]:
    """Within it, ``torch.export`` captures the task's ModelOpt quantizers as Q/DQ pairs.

    Each calibrated quantizer gets scales ``amax / 127`` (ModelOpt's) on the :data:`QDQ_BACKEND`
    backend, and ModelOpt's export mode is on; both are undone on exit.
    """
    from modelopt.torch.quantization.nn import TensorQuantizer
    from modelopt.torch.quantization.utils import export_torch_mode

    _qdq_backend()
    changed = []
    for module in task.modules():
        if not isinstance(module, TensorQuantizer) or not module.is_enabled:
            continue
        amax = module.amax.detach().float().cpu()
        if amax.numel() == 1:
            args: dict[str, Any] = {"scale": max(float(amax) / 127.0, 1e-12)}
        else:
            axis = module.axis if isinstance(module.axis, int) else module.axis[0]
            scales = (amax.flatten() / 127.0).clamp_min(1e-12)
            args = {
                "scales": scales,
                "zeros": torch.zeros(scales.numel(), dtype=torch.int32),
                "axis": axis,
            }
        changed.append((module, module.backend, module.backend_extra_args))
        module.backend, module.backend_extra_args = QDQ_BACKEND, args
    try:
        with export_torch_mode():
            yield
    finally:
        for module, backend, extra in changed:
            module.backend, module.backend_extra_args = backend, extra


def quantize_modelopt(
    task: DetectionTask,
    output: Path,
    calibration: Tensor,
    input_size: tuple[int, int],
    batch: int = 1,
    dynamic: bool = False,
    keep_float: Sequence[str] = KEEP_FLOAT,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """ModelOpt INT8 of a copy of the task, exported as a Q/DQ ONNX graph (atomically).

    A ``dynamo`` task (RT-DETR) is captured by ``torch.export`` through :func:`qdq_export` and
    keeps its dynamic batch and size; a ``torchscript`` task (Faster R-CNN) goes through
    ModelOpt's own ONNX export of its quantizers. ``metadata`` goes to the model's
    ``metadata_props``.

    Returns:
        What the sidecar records under ``quantization``.
    """
    from neo.deploy.onnx_export import export_onnx

    quantized, info = quantize_task_modelopt(task, calibration, keep_float)
    export = contextlib.nullcontext() if task.export_tracer != "dynamo" else qdq_export(quantized)
    with export:
        export_onnx(quantized, Path(output), input_size, batch, dynamic, metadata=metadata)
    return info


def quantize_int8(
    fp32_onnx: Path,
    output: Path,
    calibration: Tensor,
    method: str = "ort",
    task: DetectionTask | None = None,
    input_size: tuple[int, int] | None = None,
    batch: int = 1,
    dynamic: bool = False,
    algorithm: str = "percentile",
    keep_float: Sequence[str] | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Writes the INT8 Q/DQ ONNX model ``output`` calibrated on ``calibration`` frames.

    Args:
        fp32_onnx: the FP32 ONNX export (what ``ort`` quantises).
        output: the INT8 ``.onnx`` file (written atomically).
        calibration: float32 (N, 3, H, W) frames preprocessed like evaluation inputs.
        method: ``ort`` (ONNX Runtime static quantisation; the CPU path) or ``modelopt``
            (NVIDIA ModelOpt; the TensorRT path).
        task: the trained task (``modelopt``).
        input_size: ``(height, width)`` of the export (``modelopt``).
        batch: batch size of the export (``modelopt``; ``ort`` follows the FP32 graph).
        dynamic: dynamic export (``modelopt``; ``ort`` follows the FP32 graph).
        algorithm: ONNX Runtime's activation ranges, ``percentile`` or ``minmax``.
        keep_float: module-name fragments of weighted layers kept in float (default
            :data:`KEEP_FLOAT`; ``[]`` quantises every weighted layer).
        metadata: strings for the output's ``metadata_props`` (e.g. the INT8 sidecar); the
            ``ort`` output otherwise keeps the FP32 model's entries.

    Returns:
        What the sidecar records under ``quantization`` (method, ranges, frame count, layers
        kept in float).

    Raises:
        ValueError: an unknown method or algorithm, no calibration frames, or ``modelopt``
            without the task and input size.
    """
    keep = KEEP_FLOAT if keep_float is None else tuple(keep_float)
    if calibration.ndim != 4 or calibration.shape[0] == 0:
        raise ValueError(
            f"calibration frames must be a non-empty (N, 3, H, W) batch, got "
            f"{tuple(calibration.shape)}"
        )
    if method == "ort":
        return quantize_ort(fp32_onnx, output, calibration, algorithm, keep, metadata)
    if method == "modelopt":
        if task is None or input_size is None:
            raise ValueError("--calib.method modelopt needs the task and the input size")
        return quantize_modelopt(
            task, output, calibration, input_size, batch, dynamic, keep, metadata
        )
    raise ValueError(f"--calib.method {method}: one of auto, {', '.join(METHODS)}")


__all__ = [
    "ALGORITHMS",
    "KEEP_FLOAT",
    "METHODS",
    "QUANTIZED_OPS",
    "float_nodes",
    "qdq_export",
    "quantize_int8",
    "quantize_modelopt",
    "quantize_ort",
    "quantize_task_modelopt",
]
