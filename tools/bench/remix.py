"""Remix against full-frame inference and SAHI's uniform slicing at equal latency, in one run.

    uv run python tools/bench/remix.py --ckpt runs/remix_demo/scene_rtdetr.ckpt \
        --profiles runs/remix_demo/profiles.json --scene data/scene \
        [--frames 30] [--plot docs/remix_ap_latency.png] [--out runs/bench/remix.json]

Scene: ``--scene`` (written by ``neo data synth-scenes`` with its defaults when missing, and
split by ``neo remix split`` into the first ``--history_frames`` frames for planning and the
others for testing). Detectors: every ``profiles.json`` entry of the checkpoint
(``<stem>_<W>x<H>``), the checkpoint run at that input size. Every method runs on the same test
frames, in order, in this process, and is scored with the same COCO evaluation (class-agnostic,
as Remix profiles; AP over IoU 0.5:0.95 and AP50):

- full frame: each detector on the whole frame, letterboxed to its input;
- SAHI: ``sahi.predict.get_sliced_prediction`` with slices of each detector's input size (objects
  at native resolution), overlap 0.2, SAHI's defaults otherwise (the whole-frame pass included,
  merging by SAHI's NMS), slices batched by 4;
- Remix: for each latency measured above as the budget, the plans planned from the history
  frames (``neo.remix.planner.plan``, 10 plans) run by ``RemixRuntime`` (padding, skip windows,
  plan controller, NMS merge).

Latency is the wall time per frame of each method's whole call (cropping, resizing, merging
included), averaged over the frames after one untimed warm-up call per detector and batch size.
The planning time of every budget is printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from neo.metrics.coco import evaluate_coco
from neo.remix.detector import DeployedDetector, Detections
from neo.remix.distribution import from_coco
from neo.remix.files import Block, Plan, load_profiles
from neo.remix.planner import plan
from neo.remix.profiler import read_coco_file, read_coco_image
from neo.remix.run import one_class
from neo.remix.runtime import RemixRuntime
from neo.remix.scenes import split_history, synth_scenes
from neo.remix.sliced import SahiDetectionModel, sliced_detections

SCORE_THRESHOLD = 0.05


def detect_all(
    frames: list[tuple[int, np.ndarray]], detect: Callable[[np.ndarray], Detections]
) -> tuple[list[dict], float]:
    """COCO results (label as ``category_id``) and the mean seconds per frame of ``detect``."""
    results, seconds = [], []
    for image_id, frame in frames:
        start = time.perf_counter()
        boxes, scores, labels = detect(frame)
        seconds.append(time.perf_counter() - start)
        for box, score, label in zip(boxes.tolist(), scores.tolist(), labels.tolist()):
            x1, y1, x2, y2 = box
            results.append(
                {
                    "image_id": image_id,
                    "category_id": int(label) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": float(score),
                }
            )
    return results, float(np.mean(seconds))


def score(ground_truth: dict, results: list[dict], image_ids: list[int]) -> dict[str, float]:
    """Class-agnostic COCO AP and AP50 of the results on the images."""
    truth, scored = one_class(ground_truth, results)
    stats = evaluate_coco(truth, scored, image_ids)
    return {"AP": stats["AP"], "AP50": stats["AP50"]}


def whole_frame_plan(name: str, view: tuple[int, int]) -> Plan:
    """The plan that runs one detector on the whole frame."""
    return Plan(0, 0.0, 0.0, [Block(0, 0, view[0], view[1], name, 0)])


def warm_up(detectors: dict[str, DeployedDetector]) -> None:
    """One untimed call per detector and batch size (1, 2, 4)."""
    for detector in detectors.values():
        width, height = detector.input_size
        for batch in (1, 2, 4):
            detector(np.zeros((batch, height, width, 3), np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", type=Path, default=Path("runs/remix_demo/scene_rtdetr.ckpt"))
    parser.add_argument("--profiles", type=Path, default=Path("runs/remix_demo/profiles.json"))
    parser.add_argument("--scene", type=Path, default=Path("data/scene"))
    parser.add_argument("--history_frames", type=int, default=30)
    parser.add_argument("--frames", type=int, default=30, help="test frames to run")
    parser.add_argument("--max_plans", type=int, default=10)
    parser.add_argument("--sahi_batch", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/remix.json"))
    parser.add_argument("--plot", type=Path, default=None, help="AP/latency plot (PNG)")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    logging.getLogger("sahi").setLevel(logging.ERROR)  # its NMS-switch warning on every frame
    if not (args.scene / "annotations.json").is_file():
        synth_scenes(args.scene)
    history, test = split_history(args.scene, args.history_frames)
    ground_truth, source = read_coco_file(test)
    images = ground_truth["images"][: args.frames]
    frames = [
        (int(im["id"]), read_coco_image(args.scene, str(im["file_name"]), source)) for im in images
    ]
    image_ids = [image_id for image_id, _ in frames]
    view = (frames[0][1].shape[1], frames[0][1].shape[0])
    distribution = from_coco(history, view)

    stem = args.ckpt.stem
    profiles = {
        name: p
        for name, p in load_profiles(args.profiles).items()
        if name.startswith(f"{stem}_") and p.input_size is not None
    }
    if not profiles:
        raise SystemExit(f"{args.profiles}: no profile named {stem}_<W>x<H> with an input_size")
    detectors = {
        name: DeployedDetector(args.ckpt, p.input_size, score_threshold=SCORE_THRESHOLD, name=name)
        for name, p in sorted(profiles.items(), key=lambda item: item[1].latency)
    }
    warm_up(detectors)
    print(
        f"{len(frames)} test frames {view[0]}x{view[1]} ({len(distribution)} history objects in "
        f"{distribution.num_frames} frames), detectors: {', '.join(detectors)}; "
        f"torch threads {torch.get_num_threads()}"
    )

    rows = []

    def record(method: str, setting: str, results: list[dict], latency: float, **extra) -> None:
        row = {"method": method, "setting": setting, "latency": latency}
        row.update(score(ground_truth, results, image_ids), **extra)
        rows.append(row)
        print(
            f"{method:<10} {setting:<34} {latency * 1e3:8.1f} ms  AP {row['AP']:.4f}  "
            f"AP50 {row['AP50']:.4f}",
            flush=True,
        )

    for name, detector in detectors.items():
        runtime = RemixRuntime(
            {name: detector}, [whole_frame_plan(name, view)], 1e9, use_skip_windows=False
        )
        results, latency = detect_all(frames, lambda f, r=runtime: r.run_frame(f)[0])
        record("full frame", name, results, latency)

    for name, detector in detectors.items():
        model = SahiDetectionModel(detector, confidence_threshold=SCORE_THRESHOLD)
        width, height = detector.input_size

        def sahi(frame: np.ndarray, m=model, size=(width, height)) -> Detections:
            return sliced_detections(m, frame, size, 0.2, batch_size=args.sahi_batch)

        results, latency = detect_all(frames, sahi)
        record("SAHI", f"{name} slices {width}x{height}", results, latency)

    budgets = sorted({row["latency"] for row in rows})
    planning = []
    for budget in budgets:
        start = time.perf_counter()
        try:
            plans = plan(profiles, distribution, budget, args.max_plans)
        except ValueError as e:
            print(f"Remix      budget {budget * 1e3:.1f} ms: {e}")
            continue
        planning.append(time.perf_counter() - start)
        runtime = RemixRuntime(detectors, plans, budget)
        results, latency = detect_all(frames, lambda f, r=runtime: r.run_frame(f)[0])
        best = plans[0]
        record(
            "Remix",
            f"budget {budget * 1e3:.1f} ms ({len(best.blocks)} blocks)",
            results,
            latency,
            budget=budget,
            est_ap=best.est_ap,
            est_lat=best.est_lat,
            plan_switches=runtime.controller.switches,
            planning_seconds=planning[-1],
        )

    print(
        f"planning {view[0]}x{view[1]} with {len(profiles)} detectors: "
        f"{max(planning):.3f} s at most, {np.mean(planning):.3f} s mean over {len(planning)} "
        "budgets"
    )
    print()
    print(comparison_table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"view": view, "frames": len(frames), "rows": rows}, indent=1))
    print(f"results written to {args.out}")
    if args.plot is not None:
        plot(rows, args.plot, view)
        print(f"plot written to {args.plot}")


def comparison_table(rows: list[dict]) -> str:
    """Markdown: each baseline against the Remix run whose budget was its latency."""
    remix = {row["budget"]: row for row in rows if row["method"] == "Remix"}
    lines = [
        "| baseline | ms/frame | AP | AP50 | Remix ms/frame | Remix AP | Remix AP50 | AP ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["method"] == "Remix" or row["latency"] not in remix:
            continue
        other = remix[row["latency"]]
        ratio = other["AP"] / row["AP"] if row["AP"] > 0 else float("inf")
        lines.append(
            f"| {row['method']} {row['setting']} | {row['latency'] * 1e3:.0f} | {row['AP']:.3f} "
            f"| {row['AP50']:.3f} | {other['latency'] * 1e3:.0f} | {other['AP']:.3f} "
            f"| {other['AP50']:.3f} | {ratio:.2f}× |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, view: tuple[int, int]) -> None:
    """AP against mean latency per frame, one series per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for method, marker in (("full frame", "s"), ("SAHI", "^"), ("Remix", "o")):
        points = sorted((r["latency"] * 1e3, r["AP"]) for r in rows if r["method"] == method)
        if points:
            xs, ys = zip(*points)
            axis.plot(xs, ys, marker=marker, label=method)
    axis.set_xscale("log")
    axis.set_xlabel("mean latency per frame (ms, log scale)")
    axis.set_ylabel("AP (class-agnostic, IoU 0.5:0.95)")
    axis.set_title(f"Remix vs full frame vs SAHI, {view[0]}x{view[1]} generated scene")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()
