"""What every detection data module offers the tasks: classes, ground truth, tuned loaders."""

from __future__ import annotations

from typing import Any

from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from neo.data.detection_dataset import collate_detection


class DetectionDataModule(LightningDataModule):
    """Base for detection data modules: DataLoader settings and the class list.

    Subclasses build ``self.train_dataset``, ``self.val_dataset``, ``self.test_dataset`` and
    ``self.predict_dataset`` in :meth:`setup` and implement :meth:`load_categories` and
    :meth:`ground_truth`.

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

    def _loader(self, dataset: Dataset | None, stage: str, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(
                f"{type(self).__name__} has no {stage} data; check its configuration"
            )
        workers = self.num_workers
        return DataLoader(
            dataset,
            batch_size=self.batch_size if stage == "train" else self.eval_batch_size,
            shuffle=shuffle,
            num_workers=workers,
            collate_fn=collate_detection,
            pin_memory=self.pin_memory and self._on_gpu(),
            persistent_workers=self.persistent_workers and workers > 0,
            prefetch_factor=self.prefetch_factor if workers > 0 else None,
            drop_last=stage == "train" and len(dataset) > self.batch_size,
        )

    def _on_gpu(self) -> bool:
        trainer = self.trainer
        return trainer is not None and trainer.accelerator.__class__.__name__ == "CUDAAccelerator"

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches."""
        return self._loader(self.train_dataset, "train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in file order."""
        return self._loader(self.val_dataset, "val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Test batches in file order."""
        return self._loader(self.test_dataset, "test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """Prediction batches in file order."""
        return self._loader(self.predict_dataset, "predict", shuffle=False)
