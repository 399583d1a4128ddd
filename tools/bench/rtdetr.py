"""RT-DETRv2 speed and memory: training step and inference, R18/R50, square and native 16:9.

    uv run python tools/bench/rtdetr.py [--variants r18 r50] [--device cpu|cuda] [--batch 1]

Each (variant, size) runs in its own process so that the CPU peak memory (max RSS from
``resource.getrusage``, which only grows) belongs to that configuration alone; on CUDA the peak is
``torch.cuda.max_memory_allocated``. The training step is forward + loss + backward + AdamW step
with 10 random boxes per image; inference is the eval forward plus post-processing (top 300).
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from neo.models.rtdetr import RTDETRCriterion, RTDETRPostProcessor, build_rtdetr

SIZES = {"640x640": (640, 640), "1088x1920": (1088, 1920)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", default=["r18", "r50"])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3, help="timed iterations at 640x640")
    parser.add_argument("--iters-large", type=int, default=2, help="timed iterations at 1088x1920")
    parser.add_argument("--amp", action="store_true", help="autocast (fp16 on CUDA, bf16 on CPU)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    parser.add_argument("--single", nargs=2, metavar=("VARIANT", "SIZE"), help=argparse.SUPPRESS)
    return parser.parse_args()


def random_targets(batch: int, device: torch.device) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    targets = []
    for _ in range(batch):
        centres = torch.rand(10, 2, generator=generator) * 0.8 + 0.1
        sizes = torch.rand(10, 2, generator=generator) * 0.15 + 0.02
        boxes = torch.cat([centres, sizes], 1)
        labels = torch.randint(0, 80, (10,), generator=generator)
        targets.append({"boxes": boxes.to(device), "labels": labels.to(device)})
    return targets


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(args: argparse.Namespace, variant: str, size_name: str) -> dict[str, float]:
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    height, width = SIZES[size_name]
    iters = args.iters if size_name == "640x640" else args.iters_large
    torch.manual_seed(0)
    model = build_rtdetr(variant, 80).to(device)
    criterion = RTDETRCriterion(80)
    postprocess = RTDETRPostProcessor(300)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    images = torch.rand(args.batch, 3, height, width, device=device)
    targets = random_targets(args.batch, device)
    sizes = torch.tensor([[height, width]] * args.batch, device=device)
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp and device.type == "cuda")

    def train_step() -> None:
        with torch.autocast(device.type, dtype=amp_dtype, enabled=args.amp):
            outputs = model(images, targets)
        loss = sum(criterion(outputs, targets).values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    @torch.inference_mode()
    def infer() -> None:
        with torch.autocast(device.type, dtype=amp_dtype, enabled=args.amp):
            postprocess(model(images), sizes)

    def timed(fn, mode: bool) -> float:
        model.train(mode)
        fn()  # warm-up (allocations, cuDNN autotuning)
        sync(device)
        start = time.perf_counter()
        for _ in range(iters):
            fn()
        sync(device)
        return (time.perf_counter() - start) / iters

    def peak() -> int:
        if device.type == "cuda":
            return torch.cuda.max_memory_allocated(device)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB

    # inference first: the CPU max RSS only grows, so it then belongs to inference alone
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    infer_s = timed(infer, False)
    infer_peak = peak()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    train_s = timed(train_step, True)
    return {
        "train_s": train_s,
        "infer_s": infer_s,
        "train_img_s": args.batch / train_s,
        "infer_img_s": args.batch / infer_s,
        "train_peak": peak(),
        "infer_peak": infer_peak,
        "iters": iters,
    }


def main() -> int:
    args = parse_args()
    if args.single:
        print(json.dumps(measure(args, *args.single)))
        return 0
    passthrough = [
        "--device", args.device, "--batch", str(args.batch), "--iters", str(args.iters),
        "--iters-large", str(args.iters_large), "--threads", str(args.threads),
        *(["--amp"] if args.amp else []),
    ]
    threads = args.threads or torch.get_num_threads()
    cpu_name = f"CPU, {threads} threads"
    device_name = torch.cuda.get_device_name(0) if args.device == "cuda" else cpu_name
    memory_kind = "peak allocated" if args.device == "cuda" else "process max RSS"
    print(f"RT-DETRv2, batch {args.batch}, {'AMP' if args.amp else 'fp32'}, {device_name}\n")
    print(f"| model | input (HxW) | train step | train img/s | infer | infer img/s | "
          f"{memory_kind} train / infer |")
    print("|---|---|---|---|---|---|---|")
    for variant in args.variants:
        for size_name in args.sizes:
            command = [sys.executable, __file__, *passthrough, "--single", variant, size_name]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
                print(f"| {variant} | {size_name} | failed: {reason} |")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"| {variant} | {size_name} | {r['train_s'] * 1000:.0f} ms | "
                f"{r['train_img_s']:.2f} | {r['infer_s'] * 1000:.0f} ms | {r['infer_img_s']:.2f} | "
                f"{r['train_peak'] / 2**30:.2f} / {r['infer_peak'] / 2**30:.2f} GiB |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
