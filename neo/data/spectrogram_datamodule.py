"""RF spectrogram detection data (``neo data spectrogram`` output), k folds grouped by recording."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from neo.data.base import DetectionDataModule
from neo.data.folds import GroupSplit, grouped_split, held_out_groups
from neo.data.images import CorruptImageError, ImageSizeError, read_image
from neo.data.problems import DatasetError, ProblemReport
from neo.data.spectrogram_dataset import (
    SpectrogramDataset,
    SpectrogramRecord,
    SquareResize,
    coco_ground_truth,
    read_records,
)

SPLITS = ("train", "val", "test")
# manifest settings that inference must repeat to see spectrograms like the training ones
SPECTROGRAM_SETTINGS = (
    "nfft",
    "hop",
    "image_size",
    "chunk_duration_s",
    "floor_percentile",
    "ceiling_percentile",
    "min_range_db",
)


class SpectrogramDataModule(DetectionDataModule):
    """Spectrogram PNGs with ``_bboxes.json`` boxes, split by recording.

    Labels are the sorted label names (``labels`` when given, else every name found) mapped to
    0..C-1; COCO category ids are 1..C. Images are resized to ``image_size`` squared (boxes scaled;
    metrics and predictions are mapped back to the original pixels). A held-out test split of
    ``test_fraction`` of the recordings is drawn first and never enters a fold; the other
    recordings are dealt into ``num_folds`` folds (see :mod:`neo.data.folds`).

    Args:
        roots: dataset folders, each holding run folders or the PNG/JSON files directly.
        labels: allowed label names; a box with another label is an error. None: every label found.
        image_size: side of the square network input in pixels.
        fold: the fold validated on, ``0 <= fold < num_folds``.
        num_folds: number of folds; 0 or 1 for one train/val split; None picks the auto-tune
            table's k-folds for the number of labelled non-test images (the default).
        test_fraction: fraction of recordings held out for testing (0 for none).
        val_fraction: fraction of non-test recordings validated on when there are no folds.
        split_seed: seed of the test draw and of the fold assignment.
        time_flip_prob: probability of flipping a training image in time.
        **kwargs: the loader arguments of :class:`~neo.data.base.DetectionDataModule`
            (``batch_size``, ``num_workers``, ...).
    """

    def __init__(
        self,
        roots: list[Path] = [Path("data/rf/spectrograms")],  # noqa: B006
        labels: list[str] | None = None,
        image_size: int = 1024,
        fold: int = 0,
        num_folds: int | None = None,
        test_fraction: float = 0.15,
        val_fraction: float = 0.2,
        split_seed: int = 0,
        time_flip_prob: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not roots:
            raise ValueError("roots must name at least one dataset folder")
        self.roots = [Path(r) for r in roots]
        self.labels = sorted(set(labels)) if labels is not None else None
        self.image_size = int(image_size)
        self.fold = fold
        self.requested_num_folds = num_folds
        self.test_fraction = test_fraction
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.time_flip_prob = time_flip_prob
        self._records: list[SpectrogramRecord] | None = None
        self._report: ProblemReport | None = None
        self._split: GroupSplit | None = None

    # ----------------------------------------------------------------------- reading
    def _load(self) -> list[SpectrogramRecord]:
        if self._records is None:
            records, report = read_records(self.roots, self.labels)
            report.raise_if_fatal()
            if not records:
                raise DatasetError(f"{', '.join(map(str, self.roots))}: no usable images")
            names = self.labels or sorted({n for r in records for n in r.names})
            if not names:
                raise DatasetError(f"{', '.join(map(str, self.roots))}: no labelled boxes found")
            index = {name: i for i, name in enumerate(names)}
            for record in records:
                record.labels = np.asarray([index[n] for n in record.names], np.int64)
            self._label_names = names
            self._records, self._report = records, report
        return self._records

    def load_categories(self) -> list[dict[str, Any]]:
        """Categories ``{id: 1..C, name}`` in sorted label-name order."""
        self._load()
        return [{"id": i + 1, "name": n} for i, n in enumerate(self._label_names)]

    def tuning_count(self) -> int:
        """Labelled images outside the test split.

        One table row then gives both the fold count (``num_folds=None``) and what
        :class:`~neo.callbacks.AutoTune` applies to the training of each fold.
        """
        records = self._load()
        test = set(
            held_out_groups([r.recording for r in records], self.test_fraction, self.split_seed)
        )
        return sum(1 for r in records if r.recording not in test and len(r.boxes))

    @property
    def num_folds(self) -> int:
        """Folds in use: ``num_folds`` as given, or the auto-tune choice when it was None."""
        if self.requested_num_folds is not None:
            return int(self.requested_num_folds)
        return int(self.tuning["k_folds"])

    @property
    def split(self) -> GroupSplit:
        """Recordings of train, val and test for the configured fold."""
        if self._split is None:
            records = self._load()
            self._split = grouped_split(
                [r.recording for r in records],
                self.fold,
                self.num_folds,
                self.test_fraction,
                self.val_fraction,
                self.split_seed,
            )
        return self._split

    def records(self, split: str) -> list[SpectrogramRecord]:
        """Images of ``"train"``, ``"val"`` or ``"test"``."""
        groups = set(self.split.of(split))
        return [r for r in self._load() if r.recording in groups]

    def training_boxes(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(width, height, boxes)`` of each training spectrogram of this fold."""
        for record in self.records("train"):
            yield record.width, record.height, record.boxes

    @property
    def num_labeled_samples(self) -> int:
        """Training images (of this fold) with at least one box."""
        return sum(1 for r in self.records("train") if len(r.boxes))

    def fingerprint_sources(self) -> list[Path]:
        """The ``_bboxes.json`` files of every labelled spectrogram (the data fingerprint)."""
        return [record.json_path for record in self._load()]

    @property
    def problem_report(self) -> ProblemReport:
        """Non-fatal problems found while reading (clipped or dropped boxes)."""
        self._load()
        assert self._report is not None
        return self._report

    # ----------------------------------------------------------------------- lightning
    def setup(self, stage: str) -> None:
        """Builds the datasets the stage needs."""
        evaluate = SquareResize(self.image_size)
        for split in ("train", "val") if stage == "fit" else (self._eval_split(stage),):
            self._report_split_problems(split)
        if stage == "fit":
            train = SquareResize(self.image_size, self.time_flip_prob)
            self.train_dataset = SpectrogramDataset(self.records("train"), train)
        if stage in ("fit", "validate"):
            self.val_dataset = SpectrogramDataset(self._nonempty("val"), evaluate)
        if stage in ("test", "predict"):
            split = self._eval_split("test")
            dataset = SpectrogramDataset(self.records(split), evaluate)
            if stage == "test":
                self.test_dataset = dataset
            else:
                self.predict_dataset = dataset

    def _report_split_problems(self, split: str) -> None:
        files = {str(r.json_path) for r in self.records(split)}
        report = ProblemReport([p for p in self.problem_report.problems if p.file in files])
        self._report_problems(split, ", ".join(map(str, self.roots)), report)

    def _nonempty(self, split: str) -> list[SpectrogramRecord]:
        records = self.records(split)
        if not records:
            raise DatasetError(f"{', '.join(map(str, self.roots))}: the {split} split is empty")
        return records

    def _eval_split(self, stage: str) -> str:
        return "test" if stage == "test" and self.split.test else "val"

    def evaluation_dataset(self, split: str) -> SpectrogramDataset:
        """A split resized like validation images (no flips)."""
        return SpectrogramDataset(self.records(split), SquareResize(self.image_size))

    def ground_truth(self, stage: str) -> dict[str, Any]:
        """COCO ground truth in original pixels: test split for ``"test"`` (else val), or val."""
        return coco_ground_truth(self.records(self._eval_split(stage)), self.categories)

    def inference_preprocessing(self) -> dict[str, Any]:
        """Stretched to ``image_size`` squared; the STFT settings from the data's manifest."""
        return {
            "input_size": (self.image_size, self.image_size),
            "resize": "stretch",
            "spectrogram": self._spectrogram_settings(),
        }

    def _spectrogram_settings(self) -> dict[str, Any] | None:
        """The inference-relevant ``settings`` of the first manifest found, or None."""
        for record in self._load():
            manifest = record.json_path.parent / "manifest.json"
            if manifest.is_file():
                try:
                    settings = json.loads(manifest.read_text())["settings"]
                    return {k: settings[k] for k in SPECTROGRAM_SETTINGS if k in settings}
                except (json.JSONDecodeError, KeyError, TypeError):
                    return None
        return None

    # ----------------------------------------------------------------------- checking
    def check(self, decode_images: bool = True) -> dict[str, ProblemReport]:
        """Every problem of the data (``neo data check``), and the split sizes.

        Args:
            decode_images: also decode every image to find corrupt files and size mismatches.

        Returns:
            ``{"all": report}``: one report for every folder under ``roots``.
        """
        records, report = read_records(self.roots, self.labels)
        if decode_images:
            for record in records:
                try:
                    read_image(
                        record.image_path, (record.height, record.width), str(record.json_path)
                    )
                except CorruptImageError as e:
                    report.add("corrupt image", str(record.image_path), str(e), fatal=True)
                except ImageSizeError as e:
                    report.add("image size mismatch", str(record.json_path), str(e), fatal=True)
        return {"all": report}
