"""TensorRT engines and Torch-TensorRT programs: building them and running them.

Two GPU forms of a neo detector, both following the deployment contract
(:mod:`neo.deploy.contract`):

- ``.engine``: a serialized TensorRT engine built from the ONNX graph with the ``tensorrt``
  Python API (:func:`build_engine`). TensorRT 11 networks are strongly typed: the precision is
  the graph's own (an FP16 ONNX from :func:`neo.deploy.onnx_fp16.to_fp16_onnx`, Q/DQ nodes for
  INT8), and TF32 stays off unless asked for (FP16/TF32 builds are a known RT-DETR accuracy
  trap).
- ``.ep``: a ``torch.export`` program compiled by Torch-TensorRT (:func:`compile_torch_tensorrt`)
  and saved so that it reloads with ``torch.export.load``.

Both need an NVIDIA GPU and the optional ``tensorrt`` extra (``uv sync --extra tensorrt``);
without them every entry point fails with one line saying what is missing, before writing
anything.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from neo.deploy.contract import INPUT_NAME, OUTPUT_NAMES, PRECISIONS, read_sidecar
from neo.deploy.runtime import DeployedModel
from neo.utils.atomic import atomic_path

INSTALL = "uv sync --extra tensorrt"
# dynamic height/width profiles start here (torch.export's range for padded sizes starts at 33)
MIN_DYNAMIC_SIDE = 64
DEFAULT_MAX_BATCH = 16
DEFAULT_WORKSPACE_GB = 4.0


class DeploymentUnavailable(ValueError):
    """A library or a GPU that a TensorRT form needs is missing on this machine."""


def require_tensorrt() -> ModuleType:
    """The ``tensorrt`` module, or a one-line :class:`DeploymentUnavailable`."""
    try:
        return importlib.import_module("tensorrt")
    except ImportError:
        raise DeploymentUnavailable(
            f"TensorRT is not installed (no tensorrt Python package); install it with `{INSTALL}` "
            "on a machine with an NVIDIA GPU"
        ) from None


def require_torch_tensorrt() -> ModuleType:
    """The ``torch_tensorrt`` module, or a one-line :class:`DeploymentUnavailable`."""
    try:
        return importlib.import_module("torch_tensorrt")
    except ImportError:
        raise DeploymentUnavailable(
            f"Torch-TensorRT is not installed (no torch_tensorrt Python package); install it with "
            f"`{INSTALL}` on a machine with an NVIDIA GPU"
        ) from None


def require_gpu() -> torch.device:
    """The current CUDA device, or a one-line :class:`DeploymentUnavailable` when there is none."""
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise DeploymentUnavailable(
            f"TensorRT needs an NVIDIA GPU, and PyTorch sees none (torch {torch.__version__}, "
            f"{build}); run on a GPU machine with the CUDA build of PyTorch (`{INSTALL}`)"
        )
    return torch.device("cuda", torch.cuda.current_device())


def _cuda_device(device: torch.device) -> torch.device:
    """``device`` if it is a GPU, else the current GPU (outputs still go back to ``device``)."""
    if device.type == "cuda":
        return torch.device("cuda", device.index if device.index is not None else 0)
    return torch.device("cuda", torch.cuda.current_device())


# ---------------------------------------------------------------------------------- engine build
def _logger(trt: ModuleType) -> Any:
    """A TensorRT logger that keeps the errors (for the one-line message) and prints warnings."""

    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.errors.append(" ".join(str(msg).split()))
            elif severity == trt.ILogger.Severity.WARNING:
                print(f"TensorRT warning: {msg}", file=sys.stderr)

    return Logger()


def graph_precision(onnx_path: Path) -> str:
    """``int8`` when the ONNX graph has Q/DQ nodes, ``fp16`` when it holds FP16 tensors, else fp32.

    Raises:
        ValueError: the file is not a readable ONNX model.
    """
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as e:  # protobuf raises its own DecodeError
        raise ValueError(f"{onnx_path}: not a readable ONNX model ({e})") from None
    ops = {node.op_type for node in model.graph.node}
    if {"QuantizeLinear", "DequantizeLinear"} & ops:
        return "int8"
    fp16 = onnx.TensorProto.FLOAT16
    if any(init.data_type == fp16 for init in model.graph.initializer) or any(
        node.op_type == "Cast" and any(a.name == "to" and a.i == fp16 for a in node.attribute)
        for node in model.graph.node
    ):
        return "fp16"
    return "fp32"


def _check_precision(onnx_path: Path, precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"--precision {precision}: unknown (one of {', '.join(PRECISIONS)})")
    found = graph_precision(onnx_path)
    if precision == "int8" and found != "int8":
        raise ValueError(
            f"{onnx_path}: no QuantizeLinear/DequantizeLinear nodes; a TensorRT 11 INT8 engine is "
            "built from a Q/DQ graph (neo export --precision int8 writes one)"
        )
    if precision == "fp16" and found != "fp16":
        raise ValueError(
            f"{onnx_path}: an FP32 graph; TensorRT 11 takes the precision from the graph, so "
            "convert it first (neo.deploy.onnx_fp16.to_fp16_onnx)"
        )


def profile_shapes(
    input_shape: tuple[int, ...],
    input_size: tuple[int, int],
    batch: int,
    max_batch: int | None = None,
    max_size: tuple[int, int] | None = None,
) -> dict[str, tuple[int, int, int, int]]:
    """Min/opt/max shapes of the ``images`` input for the dynamic dimensions of ``input_shape``.

    Args:
        input_shape: the network's input shape, ``-1`` where dynamic.
        input_size: ``(height, width)`` of the export, the optimum.
        batch: the optimum batch.
        max_batch: largest batch of a dynamic batch (default: 16, or ``batch`` if larger).
        max_size: largest ``(height, width)`` of a dynamic size (default: ``input_size``).

    Returns:
        ``{"min": ..., "opt": ..., "max": ...}`` as (B, 3, H, W).
    """
    height, width = input_size
    max_batch = max(batch, max_batch or DEFAULT_MAX_BATCH)
    max_h, max_w = max_size or input_size
    max_h, max_w = max(max_h, height), max(max_w, width)
    fixed = [int(d) for d in input_shape]
    dynamic = [d < 0 for d in fixed]
    shapes = {}
    for key, b, h, w in (
        ("min", 1, min(MIN_DYNAMIC_SIDE, height), min(MIN_DYNAMIC_SIDE, width)),
        ("opt", batch, height, width),
        ("max", max_batch, max_h, max_w),
    ):
        wanted = (b, 3, h, w)
        opt = (batch, 3, height, width)
        shapes[key] = tuple(
            wanted[i] if dynamic[i] else (fixed[i] if fixed[i] > 0 else opt[i]) for i in range(4)
        )
    return shapes  # type: ignore[return-value]


def build_engine(
    onnx_path: Path | str,
    output: Path | str,
    precision: str = "fp16",
    input_size: tuple[int, int] = (640, 640),
    batch: int = 1,
    dynamic: bool = False,
    max_batch: int | None = None,
    max_size: tuple[int, int] | None = None,
    allow_tf32: bool = False,
    workspace_gb: float = DEFAULT_WORKSPACE_GB,
) -> dict[str, Any]:
    """Builds a serialized TensorRT engine from an ONNX graph and writes it atomically.

    The network is strongly typed, so the graph decides the precision: an FP32 graph gives an
    FP32 engine, an FP16 graph (:func:`neo.deploy.onnx_fp16.to_fp16_onnx`) an FP16 one, and a
    Q/DQ graph an INT8 one. Dynamic dimensions of the ONNX input get one optimisation profile.

    Args:
        onnx_path: the ``.onnx`` graph (FP32, FP16 or Q/DQ INT8 as ``precision`` says).
        output: the ``.engine`` file to write.
        precision: ``fp32``, ``fp16`` or ``int8``; checked against the graph.
        input_size: ``(height, width)`` of the export (the profile's optimum).
        batch: the batch (the profile's optimum when the batch is dynamic).
        dynamic: the graph has dynamic dimensions to cover with a profile (they are read from
            the graph; this only records the request).
        max_batch: largest batch of a dynamic batch (default 16).
        max_size: largest ``(height, width)`` of a dynamic size (default: ``input_size``).
        allow_tf32: let FP32 layers use TF32 (off by default).
        workspace_gb: the builder's workspace memory limit in GiB.

    Returns:
        What the sidecar records under ``extra``: TensorRT version, TF32, profile shapes,
        workspace, build seconds.

    Raises:
        DeploymentUnavailable: TensorRT or a GPU is missing (nothing is written).
        FileNotFoundError: no ``onnx_path``.
        ValueError: the graph does not match ``precision``, or TensorRT cannot parse or build it
            (the message has TensorRT's first error).
    """
    onnx_path, output = Path(onnx_path), Path(output)
    trt = require_tensorrt()
    require_gpu()
    if not onnx_path.is_file():
        raise FileNotFoundError(f"{onnx_path}: no such ONNX model")
    _check_precision(onnx_path, precision)
    logger = _logger(trt)
    started = time.perf_counter()
    builder = trt.Builder(logger)
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    flags = 1 << int(strongly_typed) if strongly_typed is not None else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)] or logger.errors
        first = " ".join((errors[0] if errors else "unknown error").split())[:300]
        raise ValueError(f"{onnx_path}: TensorRT cannot parse the graph ({first})")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * 2**30))
    tf32 = getattr(trt.BuilderFlag, "TF32", None)
    if tf32 is not None:
        if allow_tf32:
            config.set_flag(tf32)
        else:
            config.clear_flag(tf32)
    image_input = network.get_input(0)
    shape = tuple(image_input.shape)
    shapes = None
    if any(d < 0 for d in shape):
        shapes = profile_shapes(shape, input_size, batch, max_batch, max_size)
        profile = builder.create_optimization_profile()
        profile.set_shape(image_input.name, shapes["min"], shapes["opt"], shapes["max"])
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        reason = logger.errors[0][:300] if logger.errors else "see TensorRT's messages above"
        raise ValueError(f"{onnx_path}: TensorRT could not build an engine ({reason})")
    with atomic_path(output) as tmp, open(tmp, "wb") as f:
        f.write(serialized)
    return {
        "tensorrt_version": trt.__version__,
        "engine_precision": precision,
        "strongly_typed": True,
        "tf32": bool(allow_tf32),
        "input_name": image_input.name,
        "input_shape": list(shape),
        "dynamic": bool(dynamic),
        "profile": {k: list(v) for k, v in shapes.items()} if shapes else None,
        "workspace_gb": workspace_gb,
        "build_seconds": round(time.perf_counter() - started, 1),
        "gpu": torch.cuda.get_device_name(),
    }


# ---------------------------------------------------------------------------------- Torch-TensorRT
def _is_quantized(module: torch.nn.Module) -> bool:
    """Whether ModelOpt has inserted its quantizers (Q/DQ) into the module."""
    return any(type(m).__name__.endswith("TensorQuantizer") for m in module.modules())


def export_dynamic_shapes(dynamic: bool, dynamic_batch: bool, max_batch: int) -> Any:
    """``torch.export`` dynamic shapes of the ``images`` input (``None`` when static)."""
    if not dynamic:
        return None
    dims: dict[int, Any] = {2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    if dynamic_batch:
        dims[0] = torch.export.Dim("batch", min=1, max=max_batch)
    return {INPUT_NAME: dims}


def compile_torch_tensorrt(
    task: Any,
    output: Path | str,
    precision: str = "fp16",
    input_size: tuple[int, int] = (640, 640),
    batch: int = 1,
    dynamic: bool = False,
    max_batch: int | None = None,
    max_size: tuple[int, int] | None = None,
    allow_tf32: bool = False,
    workspace_gb: float = DEFAULT_WORKSPACE_GB,
) -> dict[str, Any]:
    """Compiles the task's inference contract with Torch-TensorRT and saves it as a ``.ep`` file.

    The contract (:meth:`~neo.tasks.DetectionTask.run_model` on float images) is captured with
    ``torch.export``, compiled by ``torch_tensorrt.dynamo.compile`` (FP16 through Torch-TensorRT's
    rule-based autocast, which keeps precision-sensitive operators in FP32; INT8 from the Q/DQ
    quantizers of a task quantised with ModelOpt), saved with ``torch_tensorrt.save`` as an
    exported program, and reloaded once and run before it replaces ``output``.

    Args:
        task: the trained detection task (for ``int8``: quantised with ModelOpt first).
        output: the ``.ep`` file to write.
        precision: ``fp32``, ``fp16`` or ``int8``.
        input_size: ``(height, width)`` of the export (the optimum of a dynamic size).
        batch: the batch (the optimum of a dynamic batch).
        dynamic: dynamic height/width, and batch when the task's tracer allows it.
        max_batch: largest batch of a dynamic batch (default 16).
        max_size: largest ``(height, width)`` of a dynamic size (default: ``input_size``).
        allow_tf32: let FP32 layers use TF32 (off by default).
        workspace_gb: TensorRT's workspace memory limit in GiB.

    Returns:
        What the sidecar records under ``extra``: versions, input shapes, autocast, TF32, seconds.

    Raises:
        DeploymentUnavailable: Torch-TensorRT or a GPU is missing (nothing is written).
        ValueError: an unknown precision, INT8 on a task without quantizers, or a model that
            ``torch.export`` or Torch-TensorRT cannot handle (the message has the first line of
            the reason).
    """
    from neo.deploy.onnx_export import ContractModule
    from neo.tasks.detection import eval_mode

    output = Path(output)
    torch_tensorrt = require_torch_tensorrt()
    device = require_gpu()
    if precision not in PRECISIONS:
        raise ValueError(f"--precision {precision}: unknown (one of {', '.join(PRECISIONS)})")
    quantized = _is_quantized(task)
    if precision == "int8" and not quantized:
        raise ValueError(
            "--format torch_tensorrt --precision int8: the task has no ModelOpt quantizers "
            "(quantise it with neo's INT8 calibration first)"
        )
    height, width = input_size
    dynamic_batch = dynamic and getattr(task, "export_tracer", "dynamo") == "dynamo"
    max_batch = max(batch, max_batch or DEFAULT_MAX_BATCH)
    shapes = profile_shapes(
        (-1 if dynamic_batch else batch, 3, -1 if dynamic else height, -1 if dynamic else width),
        input_size,
        batch,
        max_batch,
        max_size,
    )
    dynamic_shapes = export_dynamic_shapes(dynamic, dynamic_batch, max_batch)
    # torch.export specialises a batch of 1, so a dynamic batch is traced with at least 2
    example = torch.rand(max(2, batch) if dynamic_batch else batch, 3, height, width, device=device)
    started = time.perf_counter()
    task = task.to(device)
    module = ContractModule(task).eval()
    try:
        with torch.no_grad(), eval_mode(task), _quantized_export(quantized):
            exported = torch.export.export(module, (example,), dynamic_shapes=dynamic_shapes)
    except Exception as e:  # torch.export raises many kinds of errors; report the first line
        raise ValueError(
            f"{type(task).__name__} cannot be captured with torch.export ({_first_line(e)})"
        ) from None
    if dynamic:
        spec = torch_tensorrt.Input(
            min_shape=shapes["min"],
            opt_shape=shapes["opt"],
            max_shape=shapes["max"],
            dtype=torch.float32,
            name=INPUT_NAME,
        )
    else:
        spec = torch_tensorrt.Input(shape=shapes["opt"], dtype=torch.float32, name=INPUT_NAME)
    options: dict[str, Any] = {
        "arg_inputs": [spec],
        "device": device,
        "disable_tf32": not allow_tf32,
        "workspace_size": int(workspace_gb * 2**30),
    }
    if precision == "fp16":
        options.update(enable_autocast=True, autocast_low_precision_type=torch.float16)
    try:
        compiled = torch_tensorrt.dynamo.compile(exported, **options)
    except Exception as e:  # Torch-TensorRT raises many kinds of errors; report the first line
        raise ValueError(f"Torch-TensorRT cannot compile the model ({_first_line(e)})") from None
    with atomic_path(output) as tmp:
        torch_tensorrt.save(
            compiled,
            str(tmp),
            output_format="exported_program",
            arg_inputs=[example],
            dynamic_shapes=dynamic_shapes,
        )
        reloaded = _load_program(tmp).module()
        with torch.no_grad():
            reloaded(example)
    return {
        "torch_tensorrt_version": torch_tensorrt.__version__,
        "tensorrt_version": _version("tensorrt"),
        "engine_precision": precision,
        "autocast_fp16": precision == "fp16",
        "quantized": quantized,
        "tf32": bool(allow_tf32),
        "profile": {k: list(v) for k, v in shapes.items()},
        "workspace_gb": workspace_gb,
        "compile_seconds": round(time.perf_counter() - started, 1),
        "gpu": torch.cuda.get_device_name(device),
    }


@contextlib.contextmanager
def _quantized_export(quantized: bool) -> Iterator[None]:
    """ModelOpt's export mode (its Q/DQ ops traced as such) when the task has quantizers."""
    if not quantized:
        yield
        return
    from modelopt.torch.quantization.utils import export_torch_mode

    with export_torch_mode():
        yield


def _first_line(error: BaseException) -> str:
    text = str(error).strip().split("\n", 1)[0]
    return (text or type(error).__name__)[:300]


def _version(module: str) -> str | None:
    try:
        return importlib.import_module(module).__version__
    except (ImportError, AttributeError):
        return None


@contextlib.contextmanager
def weights_only_loads() -> Iterator[None]:
    """Every ``torch.load`` inside the block is weights-only, whatever its caller asks.

    ``torch.export.load`` falls back to unrestricted unpickling for some payloads; neo never
    unpickles a file, so the fallback is switched off (``TORCH_FORCE_WEIGHTS_ONLY_LOAD``). The
    compiled TensorRT engines inside a Torch-TensorRT program are TorchScript objects, restored
    by TorchScript's own loader.
    """
    keys = ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    saved = {key: os.environ.get(key) for key in keys}
    os.environ[keys[0]] = "1"
    os.environ.pop(keys[1], None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _load_program(path: Path) -> Any:
    """The ``torch.export`` program saved at ``path``, loaded without unpickling."""
    with weights_only_loads(), open(path, "rb") as f:
        return torch.export.load(f)


# ---------------------------------------------------------------------------------- running
def _torch_dtype(trt: ModuleType, dtype: Any) -> torch.dtype:
    table = {
        "FLOAT": torch.float32,
        "HALF": torch.float16,
        "BF16": torch.bfloat16,
        "INT8": torch.int8,
        "UINT8": torch.uint8,
        "INT32": torch.int32,
        "INT64": torch.int64,
        "BOOL": torch.bool,
    }
    for name, torch_dtype in table.items():
        if getattr(trt.DataType, name, None) == dtype:
            return torch_dtype
    raise ValueError(f"TensorRT tensor type {dtype} has no PyTorch equivalent")


def _to_contract(
    boxes: Tensor, scores: Tensor, labels: Tensor, device: torch.device
) -> tuple[Tensor, Tensor, Tensor]:
    return (
        boxes.float().to(device),
        scores.float().to(device),
        labels.long().to(device),
    )


class TensorRTModel(DeployedModel):
    """A serialized TensorRT engine run on its own CUDA stream.

    Inputs are copied to the GPU, the engine runs asynchronously on the model's stream (the
    caller's stream waits for it), and the outputs come back on ``device`` (on the CPU when
    ``device`` is ``cpu``).

    Args:
        path: the ``.engine``/``.plan`` file (its sidecar next to it).
        device: where outputs go; the engine runs on this GPU, or the current one for ``cpu``.

    Raises:
        DeploymentUnavailable: TensorRT or a GPU is missing.
        ValueError: the engine cannot be deserialized or does not have the contract's tensors.
    """

    backend = "tensorrt"

    def __init__(self, path: Path, device: torch.device) -> None:
        trt = require_tensorrt()
        require_gpu()
        path = Path(path)
        spec = read_sidecar(path)
        super().__init__(path, spec.precision, spec.inference, spec, torch.device(device))
        self.gpu = _cuda_device(self.device)
        self._trt = trt
        self._logger = _logger(trt)
        with torch.cuda.device(self.gpu):
            self._runtime = trt.Runtime(self._logger)
            self.engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
            if self.engine is None:
                reason = self._logger.errors[0][:200] if self._logger.errors else "unknown reason"
                raise ValueError(
                    f"{path}: TensorRT {trt.__version__} cannot load the engine ({reason}); "
                    "engines only run with the TensorRT version and GPU type they were built for"
                )
            self.context = self.engine.create_execution_context()
            self.stream = torch.cuda.Stream(self.gpu)
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        missing = [n for n in OUTPUT_NAMES if n not in names]
        if inputs != [INPUT_NAME] or missing:
            raise ValueError(
                f"{path}: not a neo engine (inputs {inputs}, outputs {names}; expected "
                f"{INPUT_NAME} -> {', '.join(OUTPUT_NAMES)})"
            )
        self.dtypes = {n: _torch_dtype(trt, self.engine.get_tensor_dtype(n)) for n in names}
        self.outputs = [n for n in names if n != INPUT_NAME]

    def run(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # noqa: D102
        caller = torch.cuda.current_stream(self.gpu)
        with torch.cuda.device(self.gpu), torch.cuda.stream(self.stream):
            self.stream.wait_stream(caller)
            x = images.to(self.gpu, self.dtypes[INPUT_NAME], non_blocking=True).contiguous()
            if not self.context.set_input_shape(INPUT_NAME, tuple(x.shape)):
                raise ValueError(
                    f"{self.path}: input shape {tuple(x.shape)} is outside the engine's profile"
                )
            self.context.set_tensor_address(INPUT_NAME, x.data_ptr())
            results = {}
            for name in self.outputs:
                shape = tuple(self.context.get_tensor_shape(name))
                if any(d < 0 for d in shape):
                    raise ValueError(f"{self.path}: output {name} has a data-dependent shape")
                results[name] = torch.empty(shape, dtype=self.dtypes[name], device=self.gpu)
                self.context.set_tensor_address(name, results[name].data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise ValueError(f"{self.path}: TensorRT failed to run the engine")
        caller.wait_stream(self.stream)
        x.record_stream(self.stream)
        for tensor in results.values():
            tensor.record_stream(caller)
        return _to_contract(*(results[n] for n in OUTPUT_NAMES), self.device)


class TorchTensorRTModel(DeployedModel):
    """A Torch-TensorRT ``.ep`` program run on its own CUDA stream.

    Args:
        path: the ``.ep`` file (its sidecar next to it).
        device: where outputs go; the program runs on this GPU, or the current one for ``cpu``.

    Raises:
        DeploymentUnavailable: Torch-TensorRT or a GPU is missing.
        ValueError: the file is not a loadable exported program.
    """

    backend = "torch_tensorrt"

    def __init__(self, path: Path, device: torch.device) -> None:
        require_torch_tensorrt()  # registers the TensorRT engine ops that the program calls
        require_gpu()
        path = Path(path)
        spec = read_sidecar(path)
        super().__init__(path, spec.precision, spec.inference, spec, torch.device(device))
        self.gpu = _cuda_device(self.device)
        try:
            with torch.cuda.device(self.gpu):
                self.module = _load_program(path).module()
        except Exception as e:  # torch.export.load raises many kinds of errors
            raise ValueError(
                f"{path}: not a loadable exported program ({_first_line(e)})"
            ) from None
        self.stream = torch.cuda.Stream(self.gpu)

    def run(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # noqa: D102
        caller = torch.cuda.current_stream(self.gpu)
        with torch.cuda.device(self.gpu), torch.cuda.stream(self.stream), torch.no_grad():
            self.stream.wait_stream(caller)
            x = images.to(self.gpu, torch.float32, non_blocking=True).contiguous()
            boxes, scores, labels = self.module(x)
        caller.wait_stream(self.stream)
        for tensor in (x, boxes, scores, labels):
            tensor.record_stream(caller)
        return _to_contract(boxes, scores, labels, self.device)


__all__ = [
    "DeploymentUnavailable",
    "TensorRTModel",
    "TorchTensorRTModel",
    "build_engine",
    "compile_torch_tensorrt",
    "graph_precision",
    "profile_shapes",
    "require_gpu",
    "require_tensorrt",
    "require_torch_tensorrt",
]
