"""ReID loading throughput (pre-cropped files, cached or not, against crops cut from 1080p frames)
and the speed of ``evaluate_rank`` against a reference implementation, in one run.

    uv run python tools/bench/reid_data.py [--workers 2] [--epochs 3] [--quick]
    uv run python tools/bench/reid_data.py --skip-data --torchreid ~/src/deep-person-reid

Data: synthetic 1920x1080 JPEG frames (noisy gradient with rectangles, quality 95) with boxes of
player size (60-200 x 150-400 px); each box is also written as its own JPEG crop (quality 95).
Four datasets, the same training transform (train_transform 256x128), the same DataLoader
(batch, workers, shuffling, persistent workers), epochs interleaved so that machine load
affects all alike:

- ``CroppedBBoxDataset`` with its LRU cache of encoded bytes (each worker fills its own cache;
  a shuffled epoch hands a worker other indices than the last, so hits grow over the epochs);
- the same caching decoded arrays (``cache_decoded=True``: no decoding once cached);
- ``CroppedBBoxDataset`` without cache (disk read and decode of every crop);
- ``FrameCropDataset``: decode of the whole frame and crop at load time.

The first epoch includes starting the workers (the same for all). The files were just written, so
they are in the OS page cache: the byte cache saves little here (it saves more on slow or
networked storage).

Rank evaluation: neo's ``evaluate_rank`` against torchreid's python ``eval_market1501`` (the file
``torchreid/metrics/rank.py`` of a local checkout given with ``--torchreid``, loaded alone) or,
without it, a plain per-query loop of the same protocol; random distances, the two must give the
same CMC and mAP.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from neo.data.reid.dataset import CroppedBBoxDataset, FrameCropDataset
from neo.data.reid.records import BoxRecord
from neo.data.reid.transforms import train_transform

FRAME_HEIGHT, FRAME_WIDTH = 1080, 1920


def synthesize_frames(
    folder: Path, num_frames: int, boxes_per_frame: int, num_identities: int, seed: int = 0
) -> list[BoxRecord]:
    """Writes JPEG frames and one JPEG crop per box; returns the boxes with their crop paths."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:FRAME_HEIGHT, 0:FRAME_WIDTH].astype(np.float32)
    records = []
    for f in range(num_frames):
        base = rng.uniform(40, 200, 3).astype(np.float32)
        frame = base + 30 * np.sin(xx[..., None] / rng.uniform(80, 300) + yy[..., None] / 400)
        frame += rng.normal(0, 6, frame.shape).astype(np.float32)
        frame = np.clip(frame, 0, 255).astype(np.uint8)
        for _ in range(60):  # clutter: field lines, ads, crowd
            x, y = rng.integers(0, FRAME_WIDTH - 50), rng.integers(0, FRAME_HEIGHT - 50)
            w, h = rng.integers(10, 300), rng.integers(10, 200)
            cv2.rectangle(frame, (x, y), (x + w, y + h), rng.integers(0, 256, 3).tolist(), -1)
        boxes = []
        for _ in range(boxes_per_frame):
            w, h = int(rng.integers(60, 201)), int(rng.integers(150, 401))
            x, y = int(rng.integers(0, FRAME_WIDTH - w)), int(rng.integers(0, FRAME_HEIGHT - h))
            cv2.rectangle(frame, (x + 5, y + 5), (x + w - 5, y + h - 5), (20, 20, 200), -1)
            cv2.circle(frame, (x + w // 2, y + h // 5), max(5, w // 5), (180, 150, 120), -1)
            boxes.append((x, y, w, h))
        frame_path = folder / f"frame{f:04d}.jpg"
        cv2.imwrite(str(frame_path), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
        decoded = cv2.imread(str(frame_path))
        for b, (x, y, w, h) in enumerate(boxes):
            crop_path = folder / f"crop{f:04d}_{b:02d}.jpg"
            crop = decoded[y : y + h, x : x + w]
            cv2.imwrite(str(crop_path), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
            label = int(rng.integers(0, num_identities))
            records.append(
                BoxRecord(str(frame_path), x, y, w, h, label=label, crop_path=str(crop_path))
            )
    return records


def run_epoch(loader: DataLoader) -> tuple[int, float]:
    """Samples and seconds of one pass over the loader."""
    count, start = 0, time.perf_counter()
    for images, _ in loader:
        count += images.shape[0]
    return count, time.perf_counter() - start


def bench_data(args: argparse.Namespace) -> None:
    """Prints samples/s per epoch of the three datasets and the ratios."""
    with tempfile.TemporaryDirectory(prefix="neo-bench-reid-") as tmp:
        records = synthesize_frames(Path(tmp), args.frames, args.boxes, args.identities)
        crop_paths = [r.crop_path for r in records]
        labels = [r.label for r in records]
        frame_mb = np.mean([Path(p).stat().st_size for p in {r.frame_path for r in records}]) / 1e6
        crop_kb = np.mean([Path(p).stat().st_size for p in crop_paths]) / 1e3
        transform = train_transform(256, 128, seed=0)
        datasets: dict[str, Dataset] = {
            "cropped, cache": CroppedBBoxDataset(crop_paths, labels, transform),
            "cropped, decoded": CroppedBBoxDataset(
                crop_paths, labels, transform, cache_decoded=True
            ),
            "cropped, no cache": CroppedBBoxDataset(crop_paths, labels, transform, use_cache=False),
            "full frame crop": FrameCropDataset(records, transform),
        }
        loaders = {
            name: DataLoader(
                dataset,
                batch_size=args.batch_size,
                shuffle=True,
                num_workers=args.workers,
                persistent_workers=args.workers > 0,
                generator=torch.Generator().manual_seed(0),
            )
            for name, dataset in datasets.items()
        }
        results = {name: [] for name in loaders}
        for _ in range(args.epochs):
            for name, loader in loaders.items():
                results[name].append(run_epoch(loader))

    print(
        f"{len(records)} boxes in {args.frames} frames of {FRAME_WIDTH}x{FRAME_HEIGHT} "
        f"(JPEG 95: {frame_mb:.2f} MB per frame, {crop_kb:.1f} kB per crop), "
        f"train_transform 256x128, batch {args.batch_size}, {args.workers} workers, "
        f"{args.epochs} epochs"
    )
    header = f"{'samples/s':20s} {'epoch 1':>9s} {'later':>9s} {'overall':>9s}"
    print(header)
    rates: dict[str, tuple[float, float, float]] = {}
    for name, runs in results.items():
        first = runs[0][0] / runs[0][1]
        later_runs = runs[1:] or runs
        later = sum(n for n, _ in later_runs) / sum(t for _, t in later_runs)
        overall = sum(n for n, _ in runs) / sum(t for _, t in runs)
        rates[name] = (first, later, overall)
        print(f"{name:20s} {first:9.1f} {later:9.1f} {overall:9.1f}")
    base = rates["full frame crop"]
    for name in ("cropped, cache", "cropped, decoded", "cropped, no cache"):
        ratios = "  ".join(
            f"{label} {a / b:5.2f}x"
            for label, a, b in zip(("epoch 1", "later", "overall"), rates[name], base)
        )
        print(f"ratio {name} / full frame crop: {ratios}")


def load_torchreid_rank(checkout: Path) -> Callable | None:
    """torchreid's python ``eval_market1501`` loaded from its file alone, or None."""
    path = Path(checkout).expanduser() / "torchreid" / "metrics" / "rank.py"
    if not path.is_file():
        print(f"no {path}: comparing with the per-query loop instead")
        return None
    spec = importlib.util.spec_from_file_location("torchreid_rank_bench", path)
    module = importlib.util.module_from_spec(spec)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Cython evaluation is unavailable"
            spec.loader.exec_module(module)
    except Exception as error:
        print(f"cannot import {path} ({error}): comparing with the per-query loop instead")
        return None
    return module.eval_market1501


def per_query_rank(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 50,
) -> tuple[np.ndarray, float]:
    """The Market-1501 protocol one query at a time: the plain reference."""
    all_cmc, all_ap = [], []
    for q in range(distmat.shape[0]):
        order = np.argsort(distmat[q])
        keep = ~((g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q]))
        matches = (g_pids[order][keep] == q_pids[q]).astype(np.int64)
        if not matches.any():
            continue
        cmc = np.minimum(matches.cumsum(), 1)[:max_rank]
        all_cmc.append(cmc)
        hits = matches.cumsum()
        precision_at_hits = hits[matches == 1] / (np.flatnonzero(matches) + 1.0)
        all_ap.append(precision_at_hits.mean())
    return np.mean(np.asarray(all_cmc, dtype=np.float32), axis=0), float(np.mean(all_ap))


def bench_rank(args: argparse.Namespace) -> None:
    """Prints the time of neo's evaluate_rank and of the reference, and checks they agree."""
    try:
        from neo.metrics.reid import evaluate_rank
    except ImportError as error:
        print(f"neo.metrics.reid.evaluate_rank is not available ({error}): rank part skipped")
        return
    rng = np.random.default_rng(0)
    nq, ng, ids = args.queries, args.gallery, args.rank_identities
    distmat = rng.random((nq, ng), dtype=np.float32)
    q_pids, g_pids = rng.integers(0, ids, nq), rng.integers(0, ids, ng)
    q_camids, g_camids = rng.integers(0, 6, nq), rng.integers(0, 6, ng)
    reference, reference_name = None, "per-query loop"
    if args.torchreid:
        reference = load_torchreid_rank(args.torchreid)
        reference_name = "torchreid eval_market1501 (python)"
    if reference is None:
        reference, reference_name = per_query_rank, "per-query loop"
    inputs = (distmat, q_pids, g_pids, q_camids, g_camids, 50)
    start = time.perf_counter()
    neo_cmc, neo_map = evaluate_rank(*inputs)
    neo_s = time.perf_counter() - start
    start = time.perf_counter()
    ref_cmc, ref_map = reference(*inputs)
    ref_s = time.perf_counter() - start
    same = np.allclose(neo_cmc, ref_cmc, atol=1e-6) and np.isclose(neo_map, ref_map, atol=1e-6)
    print(f"evaluate_rank, {nq} queries x {ng} gallery, {ids} identities, 6 cameras")
    print(f"{reference_name:36s} {ref_s:8.2f} s")
    print(f"{'neo evaluate_rank':36s} {neo_s:8.2f} s")
    print(f"speed-up: {ref_s / neo_s:.1f}x; same CMC and mAP: {same} (mAP {neo_map:.5f})")
    if not same:
        sys.exit("evaluate_rank disagrees with the reference")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--boxes", type=int, default=10, help="boxes per frame")
    parser.add_argument("--identities", type=int, default=50)
    parser.add_argument("--queries", type=int, default=3000)
    parser.add_argument("--gallery", type=int, default=15000)
    parser.add_argument("--rank_identities", type=int, default=750)
    parser.add_argument("--torchreid", type=Path, help="local checkout of deep-person-reid")
    parser.add_argument("--skip-data", action="store_true")
    parser.add_argument("--skip-rank", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    args = parser.parse_args()
    if args.quick:
        args.frames, args.epochs = 6, 2
        args.queries, args.gallery, args.rank_identities = 300, 1500, 75
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    if not args.skip_data:
        bench_data(args)
    if not args.skip_rank:
        bench_rank(args)


if __name__ == "__main__":
    main()
