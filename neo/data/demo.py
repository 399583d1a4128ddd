"""The built-in demo data: a synthetic 16:9 COCO dataset generated on first use."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from neo.data.coco_datamodule import CocoDataModule
from neo.data.synth import synthesize_coco


def default_cache_dir() -> Path:
    """``$NEO_CACHE`` or ``~/.cache/neo``."""
    return Path(os.environ.get("NEO_CACHE", Path.home() / ".cache" / "neo"))


class DemoCocoDataModule(CocoDataModule):
    """:class:`CocoDataModule` over synthetic shapes, written to a cache folder when missing.

    Generation is deterministic and takes seconds; later runs reuse the folder. Nothing is
    downloaded.

    Args:
        root: where the data goes (default: ``<cache>/demo-coco-<H>x<W>-<N>``).
        num_train: training images.
        num_val: validation images.
        image_height: height of the generated images.
        image_width: width of the generated images.
        num_classes: shape classes (1 to 4).
        objects_per_image: range of objects drawn per image.
        size_range: range of object side as a fraction of the image height.
        seed: generator seed.
        train_sizes: (height, width) canvases for multi-scale training (default: one, 1088×1920).
        num_workers: DataLoader worker processes.
        **kwargs: the other arguments of :class:`CocoDataModule` (``eval_size``, ``hflip_prob``,
            ``batch_size``, ...); the split folders and files are fixed.
    """

    def __init__(
        self,
        root: Path | None = None,
        num_train: int = 64,
        num_val: int = 16,
        image_height: int = 1080,
        image_width: int = 1920,
        num_classes: int = 3,
        objects_per_image: tuple[int, int] = (4, 12),
        size_range: tuple[float, float] = (0.02, 0.3),
        seed: int = 0,
        train_sizes: list[tuple[int, int]] = [(1088, 1920)],  # noqa: B006
        num_workers: int = 2,
        **kwargs: Any,
    ) -> None:
        if root is None:
            root = default_cache_dir() / (
                f"demo-coco-{image_height}x{image_width}-{num_train}-{num_val}-c{num_classes}-s{seed}"
            )
        synthesize_coco(
            Path(root),
            num_train=num_train,
            num_val=num_val,
            height=image_height,
            width=image_width,
            num_classes=num_classes,
            seed=seed,
            objects_per_image=tuple(objects_per_image),
            size_range=tuple(size_range),
        )
        super().__init__(
            root=Path(root),
            train_images="train",
            train_annotations="annotations/instances_train.json",
            val_images="val",
            val_annotations="annotations/instances_val.json",
            test_images=None,
            test_annotations=None,
            train_sizes=train_sizes,
            num_workers=num_workers,
            **kwargs,
        )
