"""Re-identification data: pre-cropped boxes, P×K training batches, query/gallery evaluation.

Set-up (every process, cheap once the crops exist): the meta CSV is read, boxes past the frame
are dropped or clipped, every box (and every negative) is cropped once into ``crop_dir``
(:func:`neo.data.reid.crops.write_crops`; resumable), and the fold's open-set split is built
(:func:`neo.data.reid.splits.build_open_set_splits`: folds grouped by quarter/session, a share of
the identities held out as unknown).

- Training: crops of the known identities in the training groups, class index = position of the
  identity in :attr:`identities`, batched P identities × K images
  (:class:`~neo.data.reid.sampler.IdentityBatchSampler`, which also shards across processes, so
  the trainer runs with ``use_distributed_sampler: false``).
- Validation: two loaders, the **query** set (every box of the validation groups: known
  identities, held-out identities, unlabelled boxes and negatives, the last three to be predicted
  -1) and the **gallery** (crops of the known identities in the training groups: the enrolled
  identities). Items are ``(image, index)``; :meth:`evaluation_info` gives each index's identity,
  camera and kind.
- Prediction: the boxes of ``predict_meta`` (default: the validation query set).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
from lightning import LightningDataModule
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset

from neo.data.base import worker_options
from neo.data.reid.crops import crop_records
from neo.data.reid.dataset import CroppedBBoxDataset
from neo.data.reid.meta import DEFAULT_FRAME_PATTERN, read_meta
from neo.data.reid.negatives import load_negatives_from_csv
from neo.data.reid.records import GALLERY, QUERY, BoxRecord
from neo.data.reid.sampler import IdentityBatchSampler
from neo.data.reid.splits import OpenSetSplit, build_open_set_splits
from neo.data.reid.transforms import eval_transform, train_transform
from neo.data.resumable import ResumableTrainingData


@dataclass(frozen=True)
class EvaluationInfo:
    """What the task needs to score one evaluation set, in loader order.

    Attributes:
        labels: identity of each item (-1: to be predicted unknown).
        cameras: camera id of each item (the retrieval protocol's camid).
        kinds: ``player``, ``background`` or ``partial``.
        records: the boxes themselves.
    """

    labels: np.ndarray
    cameras: np.ndarray
    kinds: list[str]
    records: list[BoxRecord]


class ReIDDataModule(ResumableTrainingData, LightningDataModule):
    """Frames plus a meta CSV (``quarter, angle, session, frame, x, y, w, h, label_id``) → ReID.

    Args:
        meta: the meta CSV (extra columns allowed; ``label_id`` -1 or empty: unlabelled).
        img_root: folder of the full frames.
        crop_dir: where the crops are written once (default: ``<img_root>/../crops``).
        negatives: negatives CSV from ``neo data negatives`` (validation unknowns), or None.
        predict_meta: meta CSV of the boxes ``predict`` identifies (default: the query set).
        bbox_mode: boxes past the frame are ``drop``-ped or ``clip``-ped (counted).
        frame_pattern: frame file name from a row's fields.
        fold: validation fold, ``0 <= fold < num_folds``.
        num_folds: folds of quarter/session groups (0 or 1: one plain split).
        unknown_fraction: share of the labelled identities held out as unknown (per fold).
        group_columns: meta columns whose values form a group (never split between train/val).
        camera_column: meta column used as camera id by the retrieval protocol (gallery items of
            the query's identity and camera are ignored); None: no item is ignored.
        split_seed: seed of the folds and of the held-out identities.
        image_size: (height, width) of the network input.
        identities_per_batch: P, identities in a training batch.
        images_per_identity: K, images of each identity in a training batch.
        eval_batch_size: crops per evaluation batch.
        gallery_per_identity: at most this many gallery crops per identity (evenly spread), or
            None for all of them.
        flip_prob: horizontal flip probability in training.
        pad: padding (pixels) before the random crop in training.
        erasing_prob: random erasing probability in training.
        use_cache: keep recently read crops in memory (:class:`CroppedBBoxDataset`).
        cache_size: crops kept per process.
        cache_decoded: cache decoded arrays instead of file bytes.
        crop_workers: processes that write the crops (0: up to 8).
        num_workers: DataLoader worker processes.
        persistent_workers: keep workers alive between epochs.
        prefetch_factor: batches loaded ahead by each worker.
        pin_memory: page-locked host memory when training on a GPU.
    """

    def __init__(
        self,
        meta: Path,
        img_root: Path,
        crop_dir: Path | None = None,
        negatives: Path | None = None,
        predict_meta: Path | None = None,
        bbox_mode: Literal["drop", "clip"] = "drop",
        frame_pattern: str = DEFAULT_FRAME_PATTERN,
        fold: int = 0,
        num_folds: int = 5,
        unknown_fraction: float = 0.2,
        group_columns: list[str] = ["quarter", "session"],  # noqa: B006
        camera_column: str | None = "angle",
        split_seed: int = 0,
        image_size: tuple[int, int] = (256, 128),
        identities_per_batch: int = 16,
        images_per_identity: int = 4,
        eval_batch_size: int = 128,
        gallery_per_identity: int | None = None,
        flip_prob: float = 0.5,
        pad: int = 10,
        erasing_prob: float = 0.5,
        use_cache: bool = True,
        cache_size: int = 10000,
        cache_decoded: bool = False,
        crop_workers: int = 0,
        num_workers: int = 4,
        persistent_workers: bool = True,
        prefetch_factor: int = 2,
        pin_memory: bool = True,
    ) -> None:
        super().__init__()
        if use_cache and cache_size <= 0:
            raise ValueError(f"cache_size must be > 0 when use_cache is on, got {cache_size}")
        if camera_column is not None and camera_column not in ("quarter", "angle", "session"):
            raise ValueError(
                f"camera_column must be quarter, angle, session or None, got {camera_column!r}"
            )
        self.meta = Path(meta)
        self.img_root = Path(img_root)
        self.crop_dir = Path(crop_dir) if crop_dir is not None else self.img_root.parent / "crops"
        self.negatives = Path(negatives) if negatives is not None else None
        self.predict_meta = Path(predict_meta) if predict_meta is not None else None
        self.bbox_mode = bbox_mode
        self.frame_pattern = frame_pattern
        self.fold = fold
        self.num_folds = num_folds
        self.unknown_fraction = unknown_fraction
        self.group_columns = tuple(group_columns)
        self.camera_column = camera_column
        self.split_seed = split_seed
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.identities_per_batch = identities_per_batch
        self.images_per_identity = images_per_identity
        self.eval_batch_size = eval_batch_size
        self.gallery_per_identity = gallery_per_identity
        self.augmentation = {"flip_prob": flip_prob, "pad": pad, "erasing_prob": erasing_prob}
        self.cache = {"use_cache": use_cache, "cache_size": cache_size}
        self.cache["cache_decoded"] = cache_decoded
        self.crop_workers = crop_workers
        self.num_workers = num_workers
        self.persistent_workers = persistent_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.train_dataset: Dataset | None = None
        self.train_labels: list[int] = []
        self.query_dataset: Dataset | None = None
        self.gallery_dataset: Dataset | None = None
        self.predict_dataset: Dataset | None = None

    # ----------------------------------------------------------------------- split
    def _cropped(self, records: list[BoxRecord], source: Path) -> list[BoxRecord]:
        cropped, _ = crop_records(
            records,
            self.crop_dir / "images",
            bbox_mode=self.bbox_mode,
            workers=self.crop_workers,
            source=source.name,
        )
        return cropped

    def _read(self, meta: Path) -> list[BoxRecord]:
        return read_meta(meta, self.img_root, self.frame_pattern)

    @cached_property
    def split(self) -> OpenSetSplit:
        """The fold's open-set split, with every box cropped (built on first use)."""
        records = self._cropped(self._read(self.meta), self.meta)
        negatives = None
        if self.negatives is not None:
            negatives = self._cropped(
                load_negatives_from_csv(self.negatives, self.img_root, self.frame_pattern),
                self.negatives,
            )
        split = build_open_set_splits(
            records,
            negatives=negatives,
            unknown_fraction=self.unknown_fraction,
            n_folds=self.num_folds,
            fold_idx=self.fold,
            group_columns=self.group_columns,
            seed=self.split_seed,
            source=str(self.meta),
        )
        train = sum(r.split == "train" for r in split.known)
        val = len(split.known) - train + sum(r.split == "val" for r in split.unknown)
        rank_zero_info(
            f"ReID fold {self.fold}/{self.num_folds}: {len(split.known_labels)} known and "
            f"{len(split.unknown_labels)} held-out identities; {train} training crops, "
            f"{val} validation queries"
        )
        return split

    def fingerprint_sources(self) -> list[Path]:
        """The meta CSVs and the negatives CSV (the run's data fingerprint)."""
        return [p for p in (self.meta, self.negatives, self.predict_meta) if p is not None]

    @property
    def identities(self) -> list[int]:
        """The known identities (``label_id``) in class-index order."""
        return list(self.split.known_labels)

    @property
    def num_classes(self) -> int:
        """Number of known identities (the classifier's outputs)."""
        return len(self.identities)

    def inference_preprocessing(self) -> dict[str, Any]:
        """How crops reach the network: stretched to ``image_size`` (stored in checkpoints)."""
        return {"input_size": self.image_size, "resize": "stretch"}

    # ----------------------------------------------------------------------- sets
    def _train_records(self) -> list[BoxRecord]:
        return [r for r in self.split.known if r.split == "train"]

    def _query_records(self) -> list[BoxRecord]:
        known = [r for r in self.split.known if r.split == "val"]
        return known + [r for r in self.split.unknown if r.split == "val"]

    def _gallery_records(self) -> list[BoxRecord]:
        records = self._train_records()
        limit = self.gallery_per_identity
        if limit is None:
            return records
        by_identity: dict[int, list[BoxRecord]] = {}
        for record in records:
            by_identity.setdefault(record.label, []).append(record)
        kept = []
        for items in by_identity.values():
            picks = np.unique(np.linspace(0, len(items) - 1, min(limit, len(items))).round())
            kept += [items[int(i)] for i in picks]
        return kept

    def evaluation_info(self, which: int) -> EvaluationInfo:
        """Identities, cameras and kinds of the query (0) or gallery (1) set, in loader order."""
        records = self._query_records() if which == QUERY else self._gallery_records()
        cameras = [r.field(self.camera_column) if self.camera_column else "" for r in records]
        if self.camera_column is None:  # every item its own camera: nothing is ignored
            cameras = [str(i) for i in range(len(records))]
            if which == QUERY:
                cameras = [f"q{c}" for c in cameras]
        return EvaluationInfo(
            labels=np.array([r.label for r in records], dtype=np.int64),
            cameras=np.array(cameras),
            kinds=[r.kind for r in records],
            records=records,
        )

    def _dataset(self, records: list[BoxRecord], labels: list[int], train: bool) -> Dataset:
        height, width = self.image_size
        transform = (
            train_transform(height, width, **self.augmentation)
            if train
            else eval_transform(height, width)
        )
        return CroppedBBoxDataset(
            [r.crop_path for r in records], labels, transform=transform, **self.cache
        )

    def setup(self, stage: str) -> None:
        """Builds the datasets of ``stage`` (crops and split first, if not done yet)."""
        if stage == "fit":
            records = self._train_records()
            index = {identity: i for i, identity in enumerate(self.identities)}
            self.train_labels = [index[r.label] for r in records]
            self.train_dataset = self._dataset(records, self.train_labels, True)
        if stage in ("fit", "validate"):
            for which in (QUERY, GALLERY):
                records = self.evaluation_info(which).records
                dataset = self._dataset(records, list(range(len(records))), False)
                setattr(self, "query_dataset" if which == QUERY else "gallery_dataset", dataset)
        if stage == "predict":
            records = self.prediction_records()
            self.predict_dataset = self._dataset(records, list(range(len(records))), False)

    @cached_property
    def _prediction_records(self) -> list[BoxRecord]:
        if self.predict_meta is None:
            return self._query_records()
        return self._cropped(self._read(self.predict_meta), self.predict_meta)

    def prediction_records(self) -> list[BoxRecord]:
        """The boxes ``predict`` identifies, in loader order (read and cropped once)."""
        return self._prediction_records

    # ----------------------------------------------------------------------- loaders
    def _loader_options(self) -> dict[str, Any]:
        return worker_options(
            self.num_workers,
            self.persistent_workers,
            self.prefetch_factor,
            self.pin_memory,
            self.trainer,
        )

    def _eval_loader(self, dataset: Dataset | None, name: str) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}: no {name} data; call setup first")
        return DataLoader(
            dataset, batch_size=self.eval_batch_size, shuffle=False, **self._loader_options()
        )

    def train_dataloader(self) -> DataLoader:
        """P×K batches of the training crops (class indices as labels)."""
        if self.train_dataset is None:
            raise RuntimeError(f"{type(self).__name__}: no training data; call setup first")
        seed = random.Random(f"sampler-{self.split_seed}").randrange(2**31)
        identities = IdentityBatchSampler(
            self.train_labels,
            identities_per_batch=self.identities_per_batch,
            images_per_identity=self.images_per_identity,
            seed=seed,
        )
        return self.resumable_train_loader(
            self.train_dataset,
            self.identities_per_batch * self.images_per_identity,
            epoch_batches=identities.batches,
            **self._loader_options(),
        )

    def val_dataloader(self) -> list[DataLoader]:
        """The query loader, then the gallery loader; items are ``(image, index)``."""
        return [
            self._eval_loader(self.query_dataset, "query"),
            self._eval_loader(self.gallery_dataset, "gallery"),
        ]

    def predict_dataloader(self) -> DataLoader:
        """The boxes to identify; items are ``(image, index)``."""
        return self._eval_loader(self.predict_dataset, "prediction")
