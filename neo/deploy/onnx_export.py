"""A detection task's inference contract as an ONNX graph, post-processing included.

The graph is the task's :meth:`~neo.tasks.DetectionTask.run_model` captured by the tracer the task
names (:attr:`~neo.tasks.DetectionTask.export_tracer`): ``dynamo`` (``torch.export``; RT-DETR,
dynamic batch and size) or ``torchscript`` (the TorchScript tracer; torchvision's Faster R-CNN,
whose per-image loops fix the batch while height and width stay dynamic). Positional embeddings
and anchors are computed from the input's size inside the graph, never stored as fixed tables.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from neo.deploy.contract import INPUT_NAME, OUTPUT_NAMES
from neo.tasks.detection import DetectionTask, eval_mode
from neo.utils.atomic import atomic_path

OPSET = 18
TORCHSCRIPT_OPSET = 17
MAX_DYNAMIC_BATCH = 64


class ContractModule(nn.Module):
    """The task's inference contract on float images: ``images -> boxes, scores, labels``.

    Args:
        task: the trained detection task.
    """

    def __init__(self, task: DetectionTask) -> None:
        super().__init__()
        self.task = task

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Float32 (B, 3, H, W) RGB in [0, 1] -> padded boxes, scores, labels."""
        return self.task.run_model(images)


def check_input_size(input_size: tuple[int, int] | list[int], divisor: int = 32) -> tuple[int, int]:
    """``(height, width)`` as ints, each a positive multiple of ``divisor``.

    Raises:
        ValueError: one line naming the size and the nearest valid one.
    """
    size = tuple(int(v) for v in input_size)
    if len(size) != 2 or min(size) < divisor or any(v % divisor for v in size):
        hint = "x".join(str(max(divisor, -(-v // divisor) * divisor)) for v in size[:2])
        raise ValueError(
            f"--input_size {' '.join(str(v) for v in input_size)}: height and width must be "
            f"multiples of {divisor} (e.g. {hint})"
        )
    return size  # type: ignore[return-value]


def _dynamo_export(
    module: nn.Module, path: Path, input_size: tuple[int, int], batch: int, dynamic: bool
) -> None:
    height, width = input_size
    kwargs: dict[str, Any] = {}
    example_batch = batch
    if dynamic:
        # torch.export specialises sizes 0 and 1, so the example batch is at least 2.
        example_batch = max(2, batch)
        kwargs["dynamic_shapes"] = {
            "images": {
                0: torch.export.Dim("batch", min=1, max=MAX_DYNAMIC_BATCH),
                2: torch.export.Dim.DYNAMIC,
                3: torch.export.Dim.DYNAMIC,
            }
        }
    example = torch.rand(example_batch, 3, height, width)
    torch.onnx.export(
        module,
        (example,),
        str(path),
        input_names=[INPUT_NAME],
        output_names=list(OUTPUT_NAMES),
        opset_version=OPSET,
        dynamo=True,
        external_data=False,
        verbose=False,
        **kwargs,
    )


def _torchscript_export(
    module: nn.Module, path: Path, input_size: tuple[int, int], batch: int, dynamic: bool
) -> None:
    height, width = input_size
    axes = {INPUT_NAME: {2: "height", 3: "width"}} if dynamic else None
    torch.onnx.export(
        module,
        (torch.rand(batch, 3, height, width),),
        str(path),
        input_names=[INPUT_NAME],
        output_names=list(OUTPUT_NAMES),
        opset_version=TORCHSCRIPT_OPSET,
        dynamo=False,
        dynamic_axes=axes,
    )


def export_onnx(
    task: DetectionTask,
    path: Path,
    input_size: tuple[int, int],
    batch: int = 1,
    dynamic: bool = False,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Writes the task's contract as an ONNX model at ``path`` (atomically, checked by onnx).

    Args:
        task: the trained task (moved to the CPU for the export).
        path: the ``.onnx`` file.
        input_size: ``(height, width)`` of the example input, multiples of 32.
        batch: the batch size (the fixed one unless the batch is dynamic).
        dynamic: dynamic height and width, and a dynamic batch where the tracer allows it.
        metadata: strings stored in the model's ``metadata_props`` (e.g. the sidecar).

    Returns:
        What the sidecar records: ``opset``, ``tracer``, ``dynamic_batch``, ``dynamic_size``,
        ``max_detections``.
    """
    import onnx

    input_size = check_input_size(input_size, task.size_divisor)
    if batch < 1:
        raise ValueError(f"--batch {batch}: must be at least 1")
    tracer = task.export_tracer
    if tracer not in ("dynamo", "torchscript"):
        raise ValueError(f"{type(task).__name__}.export_tracer must be dynamo or torchscript")
    task = task.cpu()
    module = ContractModule(task)
    path = Path(path)
    with (
        atomic_path(path) as tmp,
        torch.no_grad(),
        eval_mode(task),
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        raw = tmp.with_name(tmp.name + ".onnx")
        try:
            exporter = _dynamo_export if tracer == "dynamo" else _torchscript_export
            exporter(module, raw, input_size, batch, dynamic)
            model = onnx.load(str(raw))
        finally:
            raw.unlink(missing_ok=True)
        for key, value in (metadata or {}).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
    return {
        "opset": TORCHSCRIPT_OPSET if tracer == "torchscript" else OPSET,
        "tracer": tracer,
        "dynamic_batch": dynamic and tracer == "dynamo",
        "dynamic_size": dynamic,
        "max_detections": task.max_detections,
        "max_dynamic_batch": MAX_DYNAMIC_BATCH if dynamic and tracer == "dynamo" else None,
    }

