"""Several detectors on one shared spectrogram, merged into one set of detections.

One spectrogram image is computed per chunk and shared: each model gets it resized to its input
size (area interpolation, as in training), as the deployment contract's float images, its boxes
are scaled back to the shared image, and all detections are merged with class-aware NMS by label
name (:func:`neo.inference.merge.merge_detections`). A model is a checkpoint or an exported model
of any format, mixed freely (:func:`neo.deploy.runtime.load_model`). On CUDA every model runs on
its own ``torch.cuda.Stream`` (TensorRT engines and Torch-TensorRT programs run on the stream
current when called) so their kernels can overlap (latency close to the slowest model rather than
the sum); on CPU the models run one after another.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from neo.deploy.runtime import DeployedModel, load_model
from neo.inference.merge import Detections, merge_detections


def resize_image(image: Tensor, size: tuple[int, int]) -> Tensor:
    """(H, W) uint8 image to ``size`` (height, width) with area interpolation (cv2 on CPU)."""
    height, width = size
    if tuple(image.shape) == (height, width):
        return image
    if image.is_cuda:
        resized = F.interpolate(image[None, None].float(), size=(height, width), mode="area")
        return resized[0, 0].round_().clamp_(0, 255).to(torch.uint8)
    array = cv2.resize(image.numpy(), (width, height), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(array))


def open_model(path: Path, device: str | torch.device) -> DeployedModel:
    """Opens a checkpoint or an exported model (:func:`~neo.deploy.runtime.load_model`).

    Args:
        path: ``.ckpt``, ``.onnx``, ``.engine``/``.plan`` or ``.ep`` file.
        device: ``cpu`` or ``cuda``.

    Raises:
        FileNotFoundError: the file or its sidecar is missing.
        ValueError: the file cannot be opened here. Either message is one line naming the file
            (prefixed with ``path`` where the backend's own message does not, e.g. TensorRT
            missing), so the culprit among several ``--models`` is clear.
    """
    try:
        return load_model(path, device)
    except (FileNotFoundError, ValueError) as e:
        if path.name in str(e):
            raise
        error = FileNotFoundError if isinstance(e, FileNotFoundError) else ValueError
        raise error(f"{path}: {e}") from None


class MultiModelDetector:
    """Runs several detectors on one spectrogram image and merges their detections.

    Args:
        models: spectrogram detectors (their inference spec's ``resize`` is ``stretch``), each
            fed the shared image resized to its ``input_size`` (an exported model's export size);
            ``model_id`` of a detection is its index here.
        score_threshold: detections scoring lower are dropped before the merge.
        iou_threshold: IoU of the class-aware merge NMS.
        device: device the models are on.
    """

    def __init__(
        self,
        models: list[DeployedModel],
        score_threshold: float = 0.5,
        iou_threshold: float = 0.5,
        device: str | torch.device = "cpu",
    ) -> None:
        if not models:
            raise ValueError("MultiModelDetector needs at least one model")
        for model in models:
            if model.inference.resize != "stretch":
                raise ValueError(
                    f"{model.path}: not a spectrogram detector (its inference spec asks for "
                    f"{model.inference.resize}ed images; train it with "
                    "neo.data.SpectrogramDataModule)"
                )
        self.models = models
        self.sizes = [model.input_size for model in models]
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.device = torch.device(device)
        self.streams = (
            [torch.cuda.Stream(device=self.device) for _ in models]
            if self.device.type == "cuda"
            else []
        )

    @classmethod
    def from_paths(
        cls,
        paths: list[Path],
        device: str | torch.device = "cpu",
        score_threshold: float = 0.5,
        iou_threshold: float = 0.5,
    ) -> MultiModelDetector:
        """Opens every model: ``.ckpt``, ``.onnx``, ``.engine``/``.plan`` or ``.ep``.

        See :func:`neo.deploy.runtime.load_model`.

        Raises:
            FileNotFoundError: a model file or its sidecar is missing (the message names it).
            ValueError: an unknown suffix, an unloadable file, or TensorRT, Torch-TensorRT or a
                GPU missing here; one line naming the model file.
        """
        return cls(
            [open_model(Path(p), device) for p in paths], score_threshold, iou_threshold, device
        )

    def _infer(self, index: int, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Model ``index``'s padded outputs for its resized copy of ``image`` (not waited for)."""
        resized = resize_image(image, self.sizes[index]).to(self.device, non_blocking=True)
        batch = resized.float().div_(255.0).expand(1, 3, -1, -1).contiguous()
        boxes, scores, labels = self.models[index](batch)
        return boxes[0], scores[0], labels[0]

    def _detections(
        self, index: int, outputs: tuple[Tensor, Tensor, Tensor], shape: tuple[int, int]
    ) -> Detections:
        """Model ``index``'s kept detections, boxes in the pixel frame of an image of ``shape``."""
        boxes, scores, labels = outputs
        size = self.sizes[index]
        keep = (labels >= 0) & (scores >= self.score_threshold)
        boxes = boxes[keep].float()
        height, width = shape
        scale = [width / size[1], height / size[0]] * 2
        boxes = boxes * torch.tensor(scale, device=boxes.device)
        names = self.models[index].inference.class_names
        kept = labels[keep].tolist()
        return Detections(
            boxes,
            scores[keep].float(),
            [names[int(i)] for i in kept],
            torch.full((len(kept),), index, dtype=torch.int64),
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
        shape = (int(image.shape[0]), int(image.shape[1]))
        if self.device.type != "cuda":
            image = image.cpu()
            parts = [
                self._detections(i, self._infer(i, image), shape) for i in range(len(self.models))
            ]
            return merge_detections(parts, self.iou_threshold)
        image = image.to(self.device)
        current = torch.cuda.current_stream(self.device)
        # every model is launched before any result is read, so their streams overlap
        outputs = []
        for i, stream in enumerate(self.streams):
            stream.wait_stream(current)
            with torch.cuda.stream(stream):
                outputs.append(self._infer(i, image))
        for stream in self.streams:
            current.wait_stream(stream)
        parts = [self._detections(i, out, shape) for i, out in enumerate(outputs)]
        torch.cuda.synchronize(self.device)
        return merge_detections(parts, self.iou_threshold)
