"""Training-loader throughput at 1920x1080 against the raw decode+resize limit, in one run.

    uv run python tools/bench/data_loader.py [--workers 2] [--batches 40]

neo's loader: CocoDataModule's training DataLoader with the full augmentation pipeline (16:9
multi-scale letterbox, flip, colour jitter, box-safe crop) and collation. Raw limit: the same
images through cv2.imread + cv2.resize to the same canvases only, same workers, same collation.
Target: neo >= 0.8 x raw.

Multi-scale batching: the same augmentation with a canvas drawn per sample (each batch padded to
its largest member, as before) and with one canvas per batch (``ResumableSampler``, now):
mean pixels per batch tensor and the fraction of them that is collation padding (beyond each
sample's own canvas).
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from neo.data import CocoDataModule
from neo.data.demo import default_cache_dir
from neo.data.detection_dataset import collate_detection
from neo.data.resumable import resumable_loader
from neo.data.synth import synthesize_coco
from neo.data.transforms import DEFAULT_TRAIN_SIZES


class RawDataset(Dataset):
    """cv2.imread + cv2.resize to a training canvas; nothing else."""

    def __init__(self, paths: list[Path], sizes: list[tuple[int, int]]) -> None:
        self.paths = paths
        self.sizes = sizes

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        image = cv2.imread(str(self.paths[i]), cv2.IMREAD_COLOR)
        h, w = self.sizes[i % len(self.sizes)]
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
        return torch.from_numpy(image).permute(2, 0, 1), {}


def _endless(loader: DataLoader):
    while True:
        yield from loader


def throughput(loader: DataLoader, batches: int) -> float:
    """Images per second over ``batches`` batches after one warm-up batch (workers started)."""
    iterator = _endless(loader)
    next(iterator)
    count, start = 0, time.perf_counter()
    for _ in range(batches):
        images, _ = next(iterator)
        count += images.shape[0]
    return count / (time.perf_counter() - start)


def collate_with_canvases(batch):
    """The batch tensor and each sample's own canvas (h, w)."""
    images, _ = collate_detection(batch)
    return images, [tuple(image.shape[1:]) for image, _ in batch]


def padding_stats(loader: DataLoader, batches: int) -> tuple[float, float]:
    """Mean pixels per batch tensor and the fraction of them that is collation padding."""
    batch_pixels, sample_pixels = 0, 0
    for images, canvases in itertools.islice(_endless(loader), batches):
        batch_pixels += images.shape[0] * images.shape[2] * images.shape[3]
        sample_pixels += sum(h * w for h, w in canvases)
    return batch_pixels / batches, 1 - sample_pixels / batch_pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)

    root = synthesize_coco(
        default_cache_dir() / f"bench-coco-1080p-{args.images}",
        num_train=args.images,
        num_val=4,
        height=1080,
        width=1920,
    )
    datamodule = CocoDataModule(
        root=root,
        train_images="train",
        train_annotations="annotations/instances_train.json",
        val_images="val",
        val_annotations="annotations/instances_val.json",
        batch_size=args.batch_size,
        num_workers=args.workers,
        persistent_workers=True,
        pin_memory=False,
    )
    datamodule.setup("fit")
    neo_loader = datamodule.train_dataloader()
    paths = [r.path for r in datamodule.train_dataset.index.images]
    raw_loader = DataLoader(
        RawDataset(paths, list(DEFAULT_TRAIN_SIZES)),
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        collate_fn=collate_detection,
        persistent_workers=args.workers > 0,
    )
    neo_runs, raw_runs = [], []
    for _ in range(args.repeats):  # interleaved so that machine load affects both alike
        raw_runs.append(throughput(raw_loader, args.batches))
        neo_runs.append(throughput(neo_loader, args.batches))
    neo_ips, raw_ips = float(np.median(neo_runs)), float(np.median(raw_runs))
    ratio = neo_ips / raw_ips
    print(
        f"1920x1080 JPEGs, batch {args.batch_size}, {args.workers} workers, "
        f"median of {args.repeats} runs"
    )
    print(f"raw limit (cv2 decode + resize): {raw_ips:7.1f} images/s")
    print(f"neo training loader:             {neo_ips:7.1f} images/s")
    print(f"ratio neo / raw: {ratio:.2f}  (target >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'})")

    dataset = datamodule.train_dataset
    common = {"num_workers": args.workers, "collate_fn": collate_with_canvases}
    torch.manual_seed(0)
    per_sample = DataLoader(dataset, args.batch_size, shuffle=True, drop_last=True, **common)
    per_batch = resumable_loader(
        dataset, args.batch_size, None, canvases=list(DEFAULT_TRAIN_SIZES), **common
    )
    print(f"multi-scale over {len(DEFAULT_TRAIN_SIZES)} canvases, {args.batches} batches:")
    runs = (("canvas per sample (before)", per_sample), ("canvas per batch", per_batch))
    for name, loader in runs:
        pixels, padding = padding_stats(loader, args.batches)
        print(f"  {name:27s} {pixels / 1e6:6.2f} Mpixel per batch, {padding:5.1%} padding")


if __name__ == "__main__":
    main()
