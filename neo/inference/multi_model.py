"""Several trained detectors on one shared spectrogram, merged into one set of detections.

One spectrogram image is computed per chunk and shared: each model gets it resized to the input
size it was trained at (area interpolation, as in training), its boxes are scaled back to the
shared image, and all detections are merged with class-aware NMS by label name
(:func:`neo.inference.merge.merge_detections`). Every model is called through its inference
contract (:meth:`neo.tasks.DetectionTask.forward`). On CUDA every model runs on its own
``torch.cuda.Stream`` so their kernels can overlap (latency close to the slowest model rather than
the sum); on CPU the models run one after another.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from neo.inference.loading import LoadedDetector, load_detector
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


class MultiModelDetector:
    """Runs several detectors on one spectrogram image and merges their detections.

    Args:
        models: the loaded spectrogram detectors (their spec's ``resize`` is ``stretch``, to its
            ``input_size``); ``model_id`` of a detection is its index here.
        score_threshold: detections scoring lower are dropped before the merge.
        iou_threshold: IoU of the class-aware merge NMS.
        device: device the models are on.
    """

    def __init__(
        self,
        models: list[LoadedDetector],
        score_threshold: float = 0.5,
        iou_threshold: float = 0.5,
        device: str | torch.device = "cpu",
    ) -> None:
        if not models:
            raise ValueError("MultiModelDetector needs at least one model")
        for model in models:
            if model.spec.resize != "stretch" or model.spec.input_size is None:
                raise ValueError(
                    f"{model.name}: not a spectrogram detector (its inference spec asks for "
                    f"{model.spec.resize}ed images; train it with neo.data.SpectrogramDataModule)"
                )
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
        """Loads every checkpoint (see :func:`neo.inference.loading.load_detector`)."""
        models = [load_detector(Path(p), device) for p in paths]
        return cls(models, score_threshold, iou_threshold, device)

    def _run_one(self, index: int, image: Tensor) -> Detections:
        model = self.models[index]
        size = model.spec.input_size
        resized = resize_image(image, size)
        batch = resized.to(self.device, non_blocking=True)[None].expand(3, -1, -1)[None]
        boxes, scores, labels = (t[0] for t in model.task(batch))
        keep = (labels >= 0) & (scores >= self.score_threshold)
        boxes = boxes[keep].float()
        height, width = image.shape
        scale = [width / size[1], height / size[0]] * 2
        boxes = boxes * torch.tensor(scale, device=boxes.device)
        names = model.spec.class_names
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
