"""PyTorch eager FP32 vs ONNX Runtime FP32 vs ONNX Runtime INT8: latency and AP, in one run.

    uv run python tools/bench/export.py --checkpoints RTDETR.ckpt FASTER_RCNN.ckpt \
        [--sizes 384x640 1088x1920] [--runs 20] [--threads 2]

For every checkpoint and input size, ``neo export`` (the same code path as the verb) writes the
FP32 and INT8 ONNX models (INT8 calibrated on frames of the training split) and checks them on
the validation images of the checkpoint's run config (its ``config.yaml``); then each form is
timed on those real frames at batch 1 (warm-up, then ``--runs`` timed runs, median and p90).
Targets: ONNX Runtime FP32 at least as fast as PyTorch eager; INT8 at least 1.5x faster than FP32
with at most 1 AP point lost.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

import torch


def parse_size(text: str) -> tuple[int, int]:
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoints", nargs="+", type=Path, required=True)
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=[(384, 640), (1088, 1920)])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--val_images", type=int, default=24)
    parser.add_argument("--calib_frames", type=int, default=64)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    os.environ["NEO_ORT_THREADS"] = str(args.threads)
    from neo.deploy.benchmark import benchmark_model
    from neo.deploy.calibration import CalibrationConfig
    from neo.deploy.export import Exporter, ExportRequest, datamodule_of_run
    from neo.deploy.preprocess import FramePreprocessor
    from neo.deploy.runtime import load_model
    from neo.deploy.validate import validation_set
    from neo.inference.loading import load_detector

    cpu = platform.processor() or platform.machine()
    load = os.getloadavg()[0]
    print(f"CPU {cpu}, {args.threads} threads, batch 1, {args.runs} timed runs; load {load:.2f}\n")
    print("| model | input (HxW) | form | median ms | p90 ms | vs eager | AP | AP50 |")
    print("|---|---|---|---|---|---|---|---|")
    for checkpoint in args.checkpoints:
        datamodule = datamodule_of_run(checkpoint)
        for size in args.sizes:
            task = load_detector(checkpoint).task
            with tempfile.TemporaryDirectory() as folder:
                request = ExportRequest(
                    format="onnx",
                    precision="int8",
                    input_size=size,
                    output=Path(folder),
                    val_images=args.val_images,
                    calib=CalibrationConfig(num_frames=args.calib_frames),
                )
                exporter = Exporter(task, request, datamodule, checkpoint)
                report = exporter.run()
                validation = report["validation"]
                preprocessor = FramePreprocessor(task.inference_spec, size)
                frames = validation_set(
                    datamodule, preprocessor, task.inference_spec.category_ids, args.val_images
                ).images
                forms = [("pytorch fp32", load_model(checkpoint), validation["pytorch"])]
                for path, spec in exporter.files:
                    checked = validation["files"][path.name]["exported"]
                    forms.append((f"onnxruntime {spec.precision}", load_model(path), checked))
                eager_ms = None
                name = f"{type(task).__name__} ({checkpoint.stem})"
                for label, model, ap in forms:
                    timing = benchmark_model(model, frames, args.runs, args.warmup, "val", 1)
                    eager_ms = eager_ms or timing.trt_latency_ms
                    print(
                        f"| {name} | {size[0]}x{size[1]} | {label} | {timing.trt_latency_ms:.1f} | "
                        f"{timing.latency_p90_ms:.1f} | {eager_ms / timing.trt_latency_ms:.2f}x | "
                        f"{ap.get('AP', float('nan')):.4f} | {ap.get('AP50', float('nan')):.4f} |",
                        flush=True,
                    )
    print(f"\nload after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
