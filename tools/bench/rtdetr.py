"""RT-DETRv2 speed and memory: training step and inference, R18/R50, square and native 16:9.

    uv run python tools/bench/rtdetr.py [--variants r18 r50] [--device cpu|cuda] [--batch 1]

Each (variant, size) runs in its own process so that the CPU peak memory (max RSS from
``resource.getrusage``, which only grows) belongs to that configuration alone; on CUDA the peak is
``torch.cuda.max_memory_allocated``. The training step is forward + loss + backward + AdamW step
with 10 random boxes per image; inference is the eval forward plus post-processing (top 300).
Prints a Markdown table.

    uv run python tools/bench/rtdetr.py --vs-official /tmp/rtdetr_official/rtdetrv2_pytorch

builds neo's and the official RT-DETRv2 (a local checkout of lyuwenyu/RT-DETR, see
``rtdetr_parity.py``) with the same weights in one process, checks that their outputs agree, and
times both interleaved (inference: eval forward + post-processing; training step: forward with
denoising, loss, backward, AdamW step); it prints the median of each and the neo/official ratio
per size and phase. The official model is built for each size (``eval_spatial_size``), so its
anchors are cached as in its own deployment.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

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
    parser.add_argument(
        "--vs-official",
        type=Path,
        metavar="PATH",
        help="rtdetrv2_pytorch folder of an official RT-DETR checkout: time neo against it",
    )
    parser.add_argument("--repeats", type=int, default=15, help="interleaved pairs per phase")
    parser.add_argument(
        "--compile", action="store_true", help="with --vs-official: neo under torch.compile"
    )
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


def vs_official(args: argparse.Namespace) -> int:
    """Times neo against the official RT-DETRv2 with the same weights, interleaved."""
    if not (args.vs_official / "src" / "zoo" / "rtdetr").is_dir():
        raise SystemExit(f"{args.vs_official}: not the rtdetrv2_pytorch folder of lyuwenyu/RT-DETR")
    torch.set_num_threads(args.threads or torch.get_num_threads())
    print(
        f"RT-DETRv2-{args.variants[0]}{' (neo under torch.compile)' if args.compile else ''}, "
        f"batch {args.batch}, CPU, {torch.get_num_threads()} threads, {args.repeats} interleaved "
        "repetitions, medians\n"
    )
    print("| input (HxW) | phase | neo | official | neo/official | max abs output diff |")
    print("|---|---|---|---|---|---|")
    for size_name in args.sizes:
        compare_at_size(args, size_name)
    return 0


def compare_at_size(args: argparse.Namespace, size_name: str) -> None:
    """Prints the inference and training-step rows of one input size."""
    sys.path[:0] = [str(Path(__file__).parent), str(args.vs_official)]
    from rtdetr_parity import build_official  # the official code, from its own checkout
    from src.zoo.rtdetr.rtdetr_postprocessor import RTDETRPostProcessor as OfficialPostProcessor

    from neo.models.rtdetr import load_official_state_dict

    height, width = SIZES[size_name]
    torch.manual_seed(0)
    official, official_criterion = build_official(
        args.vs_official, args.variants[0], [height, width]
    )
    with torch.no_grad():
        for parameter in official.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.02)
    model = build_rtdetr(args.variants[0], 80)
    load_official_state_dict(
        model,
        {
            k: v
            for k, v in official.state_dict().items()
            if not k.endswith(("anchors", "valid_mask"))
        },
    )
    compiled = torch.compile(model) if args.compile else model
    nets = {"neo": (compiled, RTDETRCriterion(80)), "official": (official, official_criterion)}
    post = {"neo": RTDETRPostProcessor(300), "official": OfficialPostProcessor(80, True, 300)}
    optimizers = {
        name: torch.optim.AdamW(net.parameters(), lr=1e-9) for name, (net, _) in nets.items()
    }
    images = torch.rand(args.batch, 3, height, width)
    targets = random_targets(args.batch, torch.device("cpu"))
    sizes = {
        "neo": torch.tensor([[height, width]] * args.batch),
        "official": torch.tensor([[width, height]] * args.batch),
    }

    def infer(name: str) -> dict:
        net = nets[name][0].eval()
        with torch.inference_mode():
            outputs = net(images)
            post[name](outputs, sizes[name])
        return outputs

    def train_step(name: str) -> None:
        net, criterion = nets[name]
        losses = criterion(net.train()(images, targets), targets)
        optimizers[name].zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizers[name].step()

    # Same weights, so a difference comes from the code; at non-square sizes the positional
    # embedding layout differs by design (rtdetr_parity.py).
    outputs = {name: infer(name) for name in nets}
    diff = max(
        (outputs["neo"][k] - outputs["official"][k]).abs().max().item()
        for k in ("pred_logits", "pred_boxes")
    )
    diff_text = f"{diff:.1e}" if height == width else f"{diff:.1e} (position layout)"
    for phase, step in (("inference", infer), ("training step", train_step)):
        times: dict[str, list[float]] = {name: [] for name in nets}
        for name in nets:
            start = time.perf_counter()
            step(name)  # warm-up (and compilation)
            if args.compile and name == "neo":
                first_call = time.perf_counter() - start
                print(f"{size_name} {phase}: first call {first_call:.0f} s", file=sys.stderr)
        for repeat in range(args.repeats):
            for name in ("neo", "official") if repeat % 2 == 0 else ("official", "neo"):
                start = time.perf_counter()
                step(name)
                times[name].append(time.perf_counter() - start)
        neo_s, official_s = (statistics.median(times[name]) for name in nets)
        print(
            f"| {size_name} | {phase} | {neo_s * 1000:.0f} ms | {official_s * 1000:.0f} ms "
            f"| {neo_s / official_s:.2f} | {diff_text if phase == 'inference' else ''} |",
            flush=True,
        )


def main() -> int:
    args = parse_args()
    if args.vs_official:
        return vs_official(args)
    if args.single:
        print(json.dumps(measure(args, *args.single)))
        return 0
    passthrough = [
        "--device",
        args.device,
        "--batch",
        str(args.batch),
        "--iters",
        str(args.iters),
        "--iters-large",
        str(args.iters_large),
        "--threads",
        str(args.threads),
        *(["--amp"] if args.amp else []),
    ]
    threads = args.threads or torch.get_num_threads()
    cpu_name = f"CPU, {threads} threads"
    device_name = torch.cuda.get_device_name(0) if args.device == "cuda" else cpu_name
    memory_kind = "peak allocated" if args.device == "cuda" else "process max RSS"
    print(f"RT-DETRv2, batch {args.batch}, {'AMP' if args.amp else 'fp32'}, {device_name}\n")
    print(
        f"| model | input (HxW) | train step | train img/s | infer | infer img/s | "
        f"{memory_kind} train / infer |"
    )
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
