"""Several trained detectors on one shared spectrogram, merged into one set of detections.

One spectrogram image is computed per chunk and shared: each model gets it resized to the image
size it was trained at (area interpolation, as in training), its boxes are scaled back to the
shared image, and all detections are merged with class-aware NMS by label name
(:func:`neo.inference.merge.merge_detections`). On CUDA every model runs on its own
``torch.cuda.Stream`` so their kernels can overlap (latency close to the slowest model rather than
the sum); on CPU the models run one after another.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from neo.inference.merge import Detections, merge_detections
from neo.tasks.detection import DetectionTask


@dataclass
class LoadedModel:
    """One detector and what inference needs to know about it.

    Attributes:
        task: the trained task (in eval mode).
        class_names: label name of each training label.
        image_size: side of the square input it was trained on.
        name: a short name (the checkpoint file stem).
        spectrogram: the spectrogram settings of its training data (may be empty).
    """

    task: DetectionTask
    class_names: list[str]
    image_size: int
    name: str
    spectrogram: dict[str, Any]


def load_model(path: Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Loads a neo checkpoint safely (``weights_only``) with its task class, classes and input size.

    The task class is the one LightningCLI recorded in the checkpoint (it must be an already
    imported :class:`DetectionTask` subclass; :mod:`neo.tasks` is imported here, nothing else is),
    or :class:`~neo.tasks.FasterRCNNTask` when none is recorded. The input size and the
    spectrogram settings come from the data module's state saved in the checkpoint
    (:meth:`neo.data.SpectrogramDataModule.state_dict`).

    Args:
        path: ``.ckpt`` file.
        device: where to put the model.

    Returns:
        The loaded model.
    """
    import neo.tasks  # noqa: F401  (makes the task classes resolvable)

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    data_state = checkpoint.get("SpectrogramDataModule") or {}
    hparams = checkpoint.get("hyper_parameters") or {}
    if "image_size" not in data_state:
        raise ValueError(
            f"{path}: no spectrogram data settings in the checkpoint (train it with "
            "neo.data.SpectrogramDataModule)"
        )
    task_class = _task_class(hparams.get("_class_path"), path)
    task = task_class.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    task.eval().to(device)
    names = list(checkpoint.get("neo_classes", {}).get("names") or data_state.get("labels") or [])
    if len(names) != task.num_classes:
        raise ValueError(f"{path}: {len(names)} class names for {task.num_classes} classes")
    return LoadedModel(
        task,
        names,
        int(data_state["image_size"]),
        path.stem,
        dict(data_state.get("spectrogram", {})),
    )


def _task_class(class_path: str | None, path: Path) -> type[DetectionTask]:
    """The recorded task class if it is an already imported DetectionTask, else FasterRCNNTask."""
    from neo.tasks import FasterRCNNTask

    if not class_path:
        return FasterRCNNTask
    module_name, _, name = str(class_path).rpartition(".")
    found = getattr(sys.modules.get(module_name), name, None)
    if not (isinstance(found, type) and issubclass(found, DetectionTask)):
        raise ValueError(f"{path}: task class {class_path!r} is not an imported neo detection task")
    return found


def resize_square(image: Tensor, size: int) -> Tensor:
    """(H, W) uint8 image to (size, size) with area interpolation (cv2 on CPU, torch on CUDA)."""
    if tuple(image.shape) == (size, size):
        return image
    if image.is_cuda:
        resized = F.interpolate(image[None, None].float(), size=(size, size), mode="area")
        return resized[0, 0].round_().clamp_(0, 255).to(torch.uint8)
    array = cv2.resize(image.numpy(), (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(array))


class MultiModelDetector:
    """Runs several detectors on one spectrogram image and merges their detections.

    Args:
        models: the loaded models; ``model_id`` of a detection is its index here.
        score_threshold: detections scoring lower are dropped before the merge.
        iou_threshold: IoU of the class-aware merge NMS.
        device: device the models are on.
    """

    def __init__(
        self,
        models: list[LoadedModel],
        score_threshold: float = 0.5,
        iou_threshold: float = 0.5,
        device: str | torch.device = "cpu",
    ) -> None:
        if not models:
            raise ValueError("MultiModelDetector needs at least one model")
        self.models = models
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.device = torch.device(device)
        self.streams = (
            [torch.cuda.Stream(device=self.device) for _ in models]
            if self.device.type == "cuda"
            else []
        )

    @classmethod
    def from_checkpoints(
        cls,
        paths: list[Path],
        device: str | torch.device = "cpu",
        score_threshold: float = 0.5,
        iou_threshold: float = 0.5,
    ) -> MultiModelDetector:
        """Loads every checkpoint (see :func:`load_model`)."""
        models = [load_model(Path(p), device) for p in paths]
        return cls(models, score_threshold, iou_threshold, device)

    def _run_one(self, index: int, image: Tensor) -> Detections:
        model = self.models[index]
        size = model.image_size
        resized = resize_square(image, size)
        batch = resized.to(self.device, non_blocking=True).float().div_(255.0)
        batch = batch[None].expand(3, -1, -1)[None]
        target = {"orig_size": torch.tensor([size, size])}
        output = model.task.detect(batch, [target])[0]
        keep = output["scores"] >= self.score_threshold
        boxes = output["boxes"][keep].float()
        height, width = image.shape
        boxes = boxes * torch.tensor([width / size, height / size] * 2, device=boxes.device)
        labels = output["labels"][keep].tolist()
        return Detections(
            boxes,
            output["scores"][keep].float(),
            [model.class_names[int(i)] for i in labels],
            torch.full((len(labels),), index, dtype=torch.int64),
        )

    @torch.inference_mode()
    def __call__(self, image: Tensor) -> Detections:
        """Detections of all models in the pixel frame of ``image``.

        Args:
            image: (H, W) spectrogram, uint8 or float in [0, 1] (quantised to 8 bits like the
                training PNGs).

        Returns:
            Merged detections with ``model_ids``.
        """
        if image.ndim != 2:
            raise ValueError(f"expected a (H, W) spectrogram image, got shape {tuple(image.shape)}")
        if image.dtype != torch.uint8:
            image = image.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
        if self.device.type != "cuda":
            image = image.cpu()
            parts = [self._run_one(i, image) for i in range(len(self.models))]
            return merge_detections(parts, self.iou_threshold)
        image = image.to(self.device)
        current = torch.cuda.current_stream(self.device)
        parts: list[Detections] = []
        for i, stream in enumerate(self.streams):
            stream.wait_stream(current)
            with torch.cuda.stream(stream):
                parts.append(self._run_one(i, image))
        for stream in self.streams:
            current.wait_stream(stream)
        torch.cuda.synchronize(self.device)
        return merge_detections(parts, self.iou_threshold)
