"""Profile the trained detector for Remix when training ends, adding it to ``profiles.json``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from neo.remix.detector import Detections, unpad


class TaskDetector:
    """A detection task's inference contract (``forward``) as a Remix detector.

    Args:
        module: the task; called with uint8 (B, 3, H, W) and returning padded ``boxes``,
            ``scores`` and ``labels`` (label -1 on padding rows).
        input_size: ``(width, height)`` the images are letterboxed to.
        name: the detector name.
    """

    def __init__(self, module: Any, input_size: tuple[int, int], name: str) -> None:
        self.module = module
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.name = name

    def __call__(self, images: np.ndarray) -> list[Detections]:  # noqa: D102
        device = getattr(self.module, "device", torch.device("cpu"))
        batch = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(device)
        return unpad(*self.module(batch))


def _module_input_size(module: Any) -> tuple[int, int] | None:
    """``(width, height)`` of the task's evaluation input, if it records one."""
    spec = getattr(module, "inference_spec", None)
    size = getattr(spec, "input_size", None)
    return None if size is None else (int(size[1]), int(size[0]))


class RemixProfiling(Callback):
    """Profiles the trained task on the validation split after ``fit`` (global rank zero only).

    Each input size gets an entry ``<name>_<W>x<H>`` in ``profiles``, added or replaced: latency
    per batch size and the accuracy per size bin (see :mod:`neo.remix.profiler`). Name it after
    the checkpoint file the weights are saved in (``neo remix run`` finds a detector's model by
    that stem). The data module must name its validation images
    (``image_folder("val")``, as :class:`~neo.data.coco_datamodule.CocoDataModule` does); otherwise
    a warning says so and nothing is profiled.

    Args:
        profiles: the ``profiles.json`` to add to.
        input_sizes: ``(width, height)`` sizes to profile (default: the task's evaluation size).
        batch_sizes: batch sizes to time.
        runs: timed calls per batch size.
        max_images: validation images evaluated.
        name: the detectors' name before ``_<W>x<H>`` (default: the run folder's name).
        class_agnostic: ignore classes when matching, as ``neo remix profile`` does by default.
    """

    def __init__(
        self,
        profiles: Path,
        input_sizes: list[tuple[int, int]] | None = None,
        batch_sizes: Sequence[int] = (1, 2, 4),
        runs: int = 20,
        max_images: int | None = 50,
        name: str | None = None,
        class_agnostic: bool = True,
    ) -> None:
        self.profiles = Path(profiles)
        self.input_sizes = [(int(w), int(h)) for w, h in input_sizes] if input_sizes else None
        self.batch_sizes = tuple(int(b) for b in batch_sizes)
        self.runs = runs
        self.max_images = max_images
        self.name = name
        self.class_agnostic = class_agnostic
        self.results: dict[str, Any] = {}

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        if not trainer.is_global_zero or trainer.fast_dev_run or trainer.interrupted:
            return
        from neo.remix.profiler import NNProfiler

        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "image_folder"):
            rank_zero_warn("RemixProfiling: the data module names no validation image folder")
            return
        sizes = self.input_sizes or [_module_input_size(pl_module)]
        if sizes[0] is None:
            rank_zero_warn("RemixProfiling: the task records no input size; set input_sizes")
            return
        name = self.name or Path(trainer.log_dir or trainer.default_root_dir).name
        profiler = NNProfiler(self.batch_sizes, runs=self.runs, max_images=self.max_images)
        detectors = [TaskDetector(pl_module, size, f"{name}_{size[0]}x{size[1]}") for size in sizes]
        self.results = profiler.profile_all(
            detectors,
            datamodule.ground_truth("val"),
            Path(datamodule.image_folder("val")),
            path=self.profiles,
            category_ids=None if self.class_agnostic else list(pl_module.category_ids),
        )
        rank_zero_info(f"RemixProfiling: {', '.join(self.results)} added to {self.profiles}")
