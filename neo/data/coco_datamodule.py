"""COCO-format detection data at native 16:9 resolution."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from neo.data.base import DetectionDataModule
from neo.data.coco_index import CocoIndex, load_coco_index, read_json
from neo.data.detection_dataset import CocoDetectionDataset, ImageFolderDataset
from neo.data.images import (
    CorruptImageError,
    ImageSizeError,
    TruncatedImageError,
    list_images,
    read_image,
)
from neo.data.problems import DatasetError, ProblemReport
from neo.data.transforms import DEFAULT_TRAIN_SIZES, EvalTransform, TrainTransform


class CocoDataModule(DetectionDataModule):
    """COCO instances files + image folders, letterboxed to 16:9 sizes that are multiples of 32.

    Category ids need not be contiguous: training labels are their positions in id order, and
    predictions are written back with the original ids.

    Args:
        root: dataset folder; every other path is relative to it.
        train_images: folder of training images.
        train_annotations: COCO instances JSON of the training split.
        val_images: folder of validation images.
        val_annotations: COCO instances JSON of the validation split.
        test_images: folder of test images (optional).
        test_annotations: COCO instances JSON of the test split (optional).
        predict_images: folder of unlabelled images for ``neo predict`` (default: the test split,
            else the validation split).
        train_sizes: (height, width) canvases for multi-scale training, multiples of 32, near 16:9.
        eval_size: (height, width) canvas for validation, test and prediction.
        hflip_prob: probability of a horizontal flip in training.
        photometric_prob: probability of colour jitter in training.
        crop_prob: probability of a box-safe 16:9 random crop in training.
        **kwargs: the loader arguments of :class:`~neo.data.base.DetectionDataModule`
            (``batch_size``, ``num_workers``, ...).
    """

    def __init__(
        self,
        root: Path = Path("data/coco"),
        train_images: str = "train2017",
        train_annotations: str = "annotations/instances_train2017.json",
        val_images: str = "val2017",
        val_annotations: str = "annotations/instances_val2017.json",
        test_images: str | None = None,
        test_annotations: str | None = None,
        predict_images: Path | None = None,
        train_sizes: list[tuple[int, int]] = list(DEFAULT_TRAIN_SIZES),  # noqa: B006
        eval_size: tuple[int, int] = (1088, 1920),
        hflip_prob: float = 0.5,
        photometric_prob: float = 0.8,
        crop_prob: float = 0.3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.splits = {
            "train": (train_images, train_annotations),
            "val": (val_images, val_annotations),
            "test": (test_images, test_annotations),
        }
        self.predict_images = Path(predict_images) if predict_images else None
        self.train_transform = TrainTransform(
            sizes=[tuple(s) for s in train_sizes],
            hflip_prob=hflip_prob,
            photometric_prob=photometric_prob,
            crop_prob=crop_prob,
        )
        self.eval_transform = EvalTransform(size=tuple(eval_size))
        self.eval_size = self.eval_transform.size
        self._indexes: dict[str, CocoIndex] = {}

    def has_split(self, split: str) -> bool:
        """Whether the split is configured."""
        images, annotations = self.splits[split]
        return images is not None and annotations is not None

    def _check_root(self) -> None:
        if not self.root.is_dir():
            raise DatasetError(
                f"{self.root}: dataset folder not found. For COCO 2017 run "
                f"`neo data coco --root {self.root}` (about 20 GB), or set data.init_args.root "
                "to your COCO-format dataset."
            )

    def annotation_path(self, split: str) -> Path:
        """The instances JSON of a split."""
        return self.root / self.splits[split][1]

    def fingerprint_sources(self) -> list[Path]:
        """The annotation files of the configured splits (the run's data fingerprint)."""
        return [self.annotation_path(s) for s in self.splits if self.has_split(s)]

    def image_folder(self, split: str) -> Path:
        """The image folder of a split."""
        return self.root / self.splits[split][0]

    def index(self, split: str, check_files: bool = True) -> CocoIndex:
        """The cleaned split, read once; fatal problems raise :class:`DatasetError`."""
        if split not in self._indexes:
            self._check_root()
            if not self.has_split(split):
                raise DatasetError(f"{self.root}: no {split} split configured")
            index = load_coco_index(
                self.annotation_path(split), self.image_folder(split), check_files
            )
            index.report.raise_if_fatal()
            self._report_problems(split, str(index.annotation_file), index.report)
            if index.category_ids != [c["id"] for c in self.categories]:
                raise DatasetError(
                    f"{index.annotation_file}: categories differ from "
                    f"{self._category_source()} (every split must list the same categories)"
                )
            self._indexes[split] = index
        return self._indexes[split]

    def _category_source(self) -> Path:
        split = "val" if self.has_split("val") else "train"
        return self.annotation_path(split)

    def load_categories(self) -> list[dict[str, Any]]:
        """Categories sorted by id, read from the validation (else training) annotations."""
        self._check_root()
        source = self._category_source()
        if source.parent.is_dir() and not source.exists():
            raise DatasetError(f"{source}: annotation file not found")
        data = read_json(source)
        raw = data.get("categories") if isinstance(data, dict) else None
        if not isinstance(raw, list) or not raw:
            raise DatasetError(f"{source}: missing or empty 'categories' list")
        try:
            cats = [{"id": int(c["id"]), "name": str(c.get("name", c["id"]))} for c in raw]
        except (KeyError, TypeError, ValueError):
            raise DatasetError(f"{source}: every category needs an integer 'id'") from None
        return sorted(cats, key=lambda c: c["id"])

    def inference_preprocessing(self) -> dict[str, Any]:
        """Letterboxed into ``eval_size`` (aspect kept, padded bottom/right)."""
        return {"input_size": self.eval_size, "resize": "letterbox", "spectrogram": None}

    @property
    def num_labeled_samples(self) -> int:
        """Training images with at least one box."""
        return sum(1 for record in self.index("train").images if len(record.boxes))

    def training_boxes(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(width, height, boxes)`` of each training image from the annotation file."""
        for record in self.index("train").images:
            yield record.width, record.height, record.boxes

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches, each on one canvas drawn from ``train_sizes``."""
        sizes = self.train_transform.sizes
        return self._loader(self.train_dataset, "train", sizes if len(sizes) > 1 else None)

    def setup(self, stage: str) -> None:
        """Reads and validates the splits the stage needs."""
        if stage == "fit":
            self.train_dataset = CocoDetectionDataset(self.index("train"), self.train_transform)
        if stage in ("fit", "validate"):
            self.val_dataset = CocoDetectionDataset(self.index("val"), self.eval_transform)
        if stage == "test":
            split = "test" if self.has_split("test") else "val"
            self.test_dataset = CocoDetectionDataset(self.index(split), self.eval_transform)
        if stage == "predict":
            if self.predict_images is not None:
                paths = list_images(self.predict_images)
                if not paths:
                    raise DatasetError(f"{self.predict_images}: no images found")
                self.predict_dataset = ImageFolderDataset(paths, self.eval_transform)
            else:
                split = "test" if self.has_split("test") else "val"
                self.predict_dataset = CocoDetectionDataset(self.index(split), self.eval_transform)

    def evaluation_dataset(self, split: str) -> CocoDetectionDataset:
        """A configured split letterboxed like validation images."""
        return CocoDetectionDataset(self.index(split), self.eval_transform)

    def ground_truth(self, stage: str) -> dict[str, Any]:
        """Cleaned COCO ground truth of the split used by ``stage`` (``"val"`` or ``"test"``)."""
        split = "test" if stage == "test" and self.has_split("test") else "val"
        return self.index(split).ground_truth

    def check(self, decode_images: bool = True) -> dict[str, ProblemReport]:
        """Validates every configured split and lists all problems (used by ``neo data check``).

        Args:
            decode_images: also decode every image to find corrupt files and size mismatches.

        Returns:
            One report per split.
        """
        self._check_root()
        reports: dict[str, ProblemReport] = {}
        for split in ("train", "val", "test"):
            if not self.has_split(split):
                continue
            annotation_file = self.annotation_path(split)
            try:
                index = load_coco_index(annotation_file, self.image_folder(split), check_files=True)
            except DatasetError as e:
                reports[split] = ProblemReport()
                reports[split].add(
                    "unreadable annotation file", str(annotation_file), str(e), fatal=True
                )
                continue
            report = index.report
            for record in index.images:
                if len(record.boxes) == 0 and len(record.crowd_boxes) == 0:
                    report.add(
                        "image without annotations (kept as negative)", str(record.path), "no boxes"
                    )
            if decode_images:
                with ThreadPoolExecutor(max_workers=4) as pool:
                    for problem in pool.map(
                        _image_problem, index.images, [annotation_file] * len(index.images)
                    ):
                        if problem is not None:
                            report.add(*problem, fatal=True)
            reports[split] = report
        return reports


def _image_problem(record: Any, annotation_file: Path) -> tuple[str, str, str] | None:
    try:
        read_image(record.path, (record.height, record.width), str(annotation_file))
    except TruncatedImageError as e:
        return "truncated image", str(record.path), str(e).split(": ", 1)[-1]
    except CorruptImageError as e:
        return "corrupt image", str(record.path), str(e).split(": ", 1)[-1]
    except ImageSizeError as e:
        return "image size mismatch", str(record.path), str(e).split(": ", 1)[-1]
    return None
