"""One loader for trained detectors: weights, task class and inference spec from a checkpoint."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from neo.inference.spec import SPEC_KEY, InferenceSpec
from neo.utils.checkpoint_io import CheckpointError, read_checkpoint

if TYPE_CHECKING:
    from neo.tasks.detection import DetectionTask


@dataclass
class LoadedDetector:
    """A trained detection task ready to call, with what inference needs to know about it.

    Attributes:
        task: the task in eval mode; ``task(images)`` is its inference contract
            (:meth:`neo.tasks.DetectionTask.forward`).
        spec: its inference spec (classes, input size, preprocessing, spectrogram settings).
        name: a short name (the checkpoint file stem).
    """

    task: DetectionTask
    spec: InferenceSpec
    name: str


def task_class_from_path(class_path: str, source: Path | str) -> type[DetectionTask]:
    """The :class:`~neo.tasks.DetectionTask` subclass named by ``class_path`` inside neo.

    Only modules of the ``neo`` package are imported; nothing is unpickled.

    Raises:
        CheckpointError: the path does not name a neo detection task.
    """
    from neo.tasks.detection import DetectionTask

    module_name, _, name = str(class_path).rpartition(".")
    found = None
    if module_name == "neo" or module_name.startswith("neo."):
        try:
            found = getattr(importlib.import_module(module_name), name, None)
        except ImportError:
            found = None
    if not (isinstance(found, type) and issubclass(found, DetectionTask)):
        raise CheckpointError(f"{source}: task class {class_path!r} is not a neo detection task")
    return found


def load_detector(path: Path | str, device: str | torch.device = "cpu") -> LoadedDetector:
    """Loads a neo checkpoint safely (weights only) as the task class its inference spec names.

    The task is built from the checkpoint's hyperparameters (without the arguments that only
    fetch starting weights, :meth:`~neo.tasks.DetectionTask.without_initial_weights`), its weights
    are loaded strictly and its spec restored (:meth:`~neo.tasks.DetectionTask.on_load_checkpoint`).

    Args:
        path: ``.ckpt`` file written by ``neo fit`` or ``neo cv``.
        device: where to put the task.

    Returns:
        The task in eval mode, its spec and the file stem.

    Raises:
        CheckpointError: the file is missing, unsafe or corrupt, has no inference spec (written
            by an older neo) or does not fit the task it names.
    """
    path = Path(path)
    checkpoint = read_checkpoint(path)
    if SPEC_KEY not in checkpoint:
        raise CheckpointError(
            f"{path}: no inference spec in the checkpoint (it was written by an older neo; "
            "train the model again)"
        )
    try:
        spec = InferenceSpec.from_dict(checkpoint[SPEC_KEY])
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None
    task_class = task_class_from_path(spec.task_class, path)
    hparams = {
        k: v for k, v in (checkpoint.get("hyper_parameters") or {}).items() if not k.startswith("_")
    }
    hparams = task_class.without_initial_weights(hparams)
    try:
        task = task_class(**hparams)
        task.on_load_checkpoint(checkpoint)
        task.load_state_dict(checkpoint.get("state_dict") or {})
    except (TypeError, ValueError, RuntimeError) as e:
        reason = str(e).strip().split("\n", 1)[0][:200]
        raise CheckpointError(f"{path}: does not fit {spec.task_class} ({reason})") from None
    task.eval().to(device)
    return LoadedDetector(task, task.inference_spec, path.stem)
