"""What every detection data module offers the tasks: classes, ground truth, tuned loaders."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from lightning import LightningDataModule
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset

from neo.data.detection_dataset import collate_detection
from neo.data.problems import ProblemReport
from neo.data.resumable import ResumableTrainingData
from neo.data.seeding import run_seed
from neo.tuning.auto_tune import auto_tune


def worker_options(
    num_workers: int,
    persistent_workers: bool,
    prefetch_factor: int,
    pin_memory: bool,
    trainer: Any,
) -> dict[str, Any]:
    """DataLoader worker and memory options shared by neo's data modules.

    Persistent workers and prefetching only with workers; page-locked memory only when
    ``trainer`` runs on CUDA. Each loader has a generator of its own for its workers' seeds, so
    that starting an epoch never draws from the global generator, which the model's own draws
    (and a resumed run's restored state) use.
    """
    on_gpu = trainer is not None and type(trainer.accelerator).__name__ == "CUDAAccelerator"
    return {
        "num_workers": num_workers,
        "pin_memory": pin_memory and on_gpu,
        "persistent_workers": persistent_workers and num_workers > 0,
        "prefetch_factor": prefetch_factor if num_workers > 0 else None,
        "generator": torch.Generator().manual_seed(run_seed()),
    }


class DetectionDataModule(ResumableTrainingData, LightningDataModule):
    """Base for detection data modules: DataLoader settings and the class list.

    Subclasses build ``self.train_dataset``, ``self.val_dataset``, ``self.test_dataset`` and
    ``self.predict_dataset`` in :meth:`setup` and implement :meth:`load_categories` and
    :meth:`ground_truth`. The loader arguments below are declared here only; subclasses take
    them through ``**kwargs``.

    Args:
        batch_size: training images per batch and process.
        eval_batch_size: validation/test/predict images per batch (default: ``batch_size``).
        num_workers: DataLoader worker processes.
        persistent_workers: keep workers alive between epochs.
        prefetch_factor: batches loaded ahead by each worker.
        pin_memory: page-locked host memory for faster copies to the GPU.
    """

    def __init__(
        self,
        batch_size: int = 4,
        eval_batch_size: int | None = None,
        num_workers: int = 4,
        persistent_workers: bool = True,
        prefetch_factor: int = 2,
        pin_memory: bool = True,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.persistent_workers = persistent_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self._categories: list[dict[str, Any]] | None = None
        self._tuning: dict[str, Any] | None = None
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self.test_dataset: Dataset | None = None
        self.predict_dataset: Dataset | None = None

    def load_categories(self) -> list[dict[str, Any]]:
        """COCO-style categories (``id``, ``name``) in training-label order."""
        raise NotImplementedError

    def ground_truth(self, stage: str) -> dict[str, Any]:
        """Cleaned COCO ground truth of the ``"val"`` or ``"test"`` split, in original pixels."""
        raise NotImplementedError

    def check(self, decode_images: bool = True) -> dict[str, Any]:
        """Validates every split and returns a problem report per split (``neo data check``)."""
        raise NotImplementedError

    def inference_preprocessing(self) -> dict[str, Any]:
        """How images reach the network, stored in checkpoints for inference.

        Returns:
            ``{"input_size": (H, W) or None, "resize": "letterbox" or "stretch",
            "spectrogram": STFT settings or None}``.
        """
        return {"input_size": None, "resize": "letterbox", "spectrogram": None}

    def evaluation_dataset(self, split: str) -> Dataset:
        """A split through the evaluation transform, without augmentation."""
        raise NotImplementedError

    def training_boxes(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(width, height, xyxy boxes)`` of each training image, in its original pixels."""
        raise NotImplementedError(f"{type(self).__name__} does not list its training boxes")

    def training_box_sizes(self) -> np.ndarray:
        """``(N, 2)`` widths and heights of the training boxes as the network sees them.

        Each image is scaled to the evaluation input size the way :meth:`inference_preprocessing`
        says (letterbox or stretch); multi-scale training canvases are near that size.
        """
        preprocessing = self.inference_preprocessing()
        if preprocessing["input_size"] is None:
            raise ValueError(f"{type(self).__name__} has no input size to measure boxes at")
        height, width = preprocessing["input_size"]
        sizes = [np.zeros((0, 2))]
        for image_width, image_height, boxes in self.training_boxes():
            scale = np.array([width / image_width, height / image_height])
            if preprocessing["resize"] == "letterbox":
                scale[:] = scale.min()
            boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
            sizes.append((boxes[:, 2:] - boxes[:, :2]) * scale)
        return np.concatenate(sizes)

    def calibration_frames(self, count: int, split: str = "train") -> list[np.ndarray]:
        """``count`` images spread evenly over a split, as the network sees them in evaluation.

        Returns:
            RGB uint8 (H, W, 3) images at the evaluation input size (INT8 calibration frames).
        """
        dataset = self.evaluation_dataset(split)
        if len(dataset) == 0:
            raise ValueError(f"{type(self).__name__}: the {split} split has no images")
        picks = np.unique(np.linspace(0, len(dataset) - 1, min(count, len(dataset))).round())
        return [dataset[int(i)][0].permute(1, 2, 0).contiguous().numpy() for i in picks]

    @property
    def num_labeled_samples(self) -> int:
        """Training images with at least one box."""
        raise NotImplementedError

    def tuning_count(self) -> int:
        """Labelled images the auto-tune table is looked up for (default: the training ones)."""
        return int(self.num_labeled_samples)

    @property
    def tuning(self) -> dict[str, Any]:
        """The auto-tune table's settings for this data, looked up once.

        Returns:
            :func:`neo.tuning.auto_tune`'s dict plus ``num_labeled_samples``, the count used.
        """
        if self._tuning is None:
            count = self.tuning_count()
            self._tuning = {
                **auto_tune(count, max(1, self.num_classes)),
                "num_labeled_samples": count,
            }
        return self._tuning

    @property
    def categories(self) -> list[dict[str, Any]]:
        """Categories in training-label order (read once)."""
        if self._categories is None:
            self._categories = self.load_categories()
        return self._categories

    @property
    def num_classes(self) -> int:
        """Number of object classes (no background)."""
        return len(self.categories)

    @property
    def class_names(self) -> list[str]:
        """Class names in training-label order."""
        return [str(c["name"]) for c in self.categories]

    def _loader(
        self,
        dataset: Dataset | None,
        stage: str,
        canvases: Sequence[tuple[int, int]] | None = None,
    ) -> DataLoader:
        """A DataLoader of ``dataset``: resumable and shuffled for training, else in file order.

        Args:
            dataset: the split's dataset.
            stage: ``"train"``, ``"val"``, ``"test"`` or ``"predict"``.
            canvases: training canvases drawn once per batch (multi-scale); None: the transform's.
        """
        if dataset is None:
            raise RuntimeError(
                f"{type(self).__name__} has no {stage} data; check its configuration"
            )
        options = worker_options(
            self.num_workers,
            self.persistent_workers,
            self.prefetch_factor,
            self.pin_memory,
            self.trainer,
        )
        if stage == "train":
            return self.resumable_train_loader(
                dataset,
                self.batch_size,
                canvases=canvases,
                collate_fn=collate_detection,
                **options,
            )
        return DataLoader(
            dataset, batch_size=self.eval_batch_size, collate_fn=collate_detection, **options
        )

    @staticmethod
    def _report_problems(split: str, source: str, report: ProblemReport) -> None:
        """One line per split at set-up counting what was clipped or dropped, if anything."""
        if report.problems:
            rank_zero_info(
                f"{split} data ({source}): {report.summary()}; `neo data check` lists them"
            )

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches."""
        return self._loader(self.train_dataset, "train")

    def val_dataloader(self) -> DataLoader:
        """Validation batches in file order."""
        return self._loader(self.val_dataset, "val")

    def test_dataloader(self) -> DataLoader:
        """Test batches in file order."""
        return self._loader(self.test_dataset, "test")

    def predict_dataloader(self) -> DataLoader:
        """Prediction batches in file order."""
        return self._loader(self.predict_dataset, "predict")
