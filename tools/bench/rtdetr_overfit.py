"""Sanity check that RT-DETR can learn: a small model memorises a few synthetic 16:9 images.

    uv run python tools/bench/rtdetr_overfit.py [--images 4] [--steps 400] [--target 0.9]

Trains on the same images it is evaluated on (no augmentation), with neo's RTDETRTask loss and
detection path and COCO evaluation, and prints AP every ``--eval-every`` steps. Exits 0 once AP
exceeds ``--target``, 1 if it never does.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch.utils.data import DataLoader

from neo.data import DemoCocoDataModule
from neo.data.detection_dataset import CocoDetectionDataset, collate_detection
from neo.metrics.coco import CocoEvaluator
from neo.tasks import RTDETRTask


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=4, help="training (= evaluation) images")
    parser.add_argument("--height", type=int, default=144, help="generated image height")
    parser.add_argument("--width", type=int, default=256, help="generated image width")
    parser.add_argument("--steps", type=int, default=400, help="maximum optimizer steps")
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--lr", type=float, default=4e-4)
    parser.add_argument("--target", type=float, default=0.9, help="AP that ends the run")
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def evaluate(task: RTDETRTask, loader: DataLoader, ground_truth: dict) -> dict[str, float]:
    evaluator = CocoEvaluator(ground_truth)
    task.eval()
    for images, targets in loader:
        detections = task.detect(images)
        image_ids = [int(t["image_id"]) for t in targets]
        evaluator.update(task.to_coco_results(detections, targets), image_ids)
    task.train()
    return evaluator.compute()


def main() -> int:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    canvas = (-(-args.height // 32) * 32, -(-args.width // 32) * 32)
    data = DemoCocoDataModule(
        num_train=args.images, num_val=1, image_height=args.height, image_width=args.width,
        objects_per_image=(2, 4), size_range=(0.15, 0.45), train_sizes=[canvas], eval_size=canvas,
    )
    index = data.index("train")
    dataset = CocoDetectionDataset(index, data.eval_transform)
    loader = DataLoader(dataset, batch_size=args.images, collate_fn=collate_detection)
    task = RTDETRTask(
        data.num_classes, variant="r18", num_queries=50, num_top_queries=100, hidden_dim=128,
        nhead=4, num_decoder_layers=3, decoder_ffn_dim=512, encoder_ffn_dim=512, num_denoising=50,
    )
    task.category_ids = [int(c["id"]) for c in data.categories]
    optimizer = torch.optim.AdamW(task.parameters(), lr=args.lr, weight_decay=1e-4)
    images, targets = next(iter(loader))
    images = task.to_float(images)
    print(f"overfitting {args.images} images of {args.height}x{args.width} on a {canvas} canvas, "
          f"{sum(len(t['boxes']) for t in targets)} boxes, {data.num_classes} classes")
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        losses = task.compute_losses(images, targets)
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(task.parameters(), 0.1)
        optimizer.step()
        if step % args.eval_every == 0 or step == args.steps:
            stats = evaluate(task, loader, index.ground_truth)
            elapsed = time.perf_counter() - start
            print(f"step {step:4d}  loss {loss.item():8.3f}  AP {stats['AP']:.3f}  "
                  f"AP50 {stats['AP50']:.3f}  ({elapsed:.0f} s)", flush=True)
            if stats["AP"] > args.target:
                print(f"reached AP {stats['AP']:.3f} > {args.target} after {step} steps")
                return 0
    print(f"AP stayed at or below {args.target} after {args.steps} steps")
    return 1


if __name__ == "__main__":
    sys.exit(main())
