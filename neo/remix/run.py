"""``neo remix run``: plans executed on a video or a COCO image set, with logs and AP."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from neo.remix.detector import DeployedDetector, Detections
from neo.remix.distribution import PADDING
from neo.remix.files import Plan, load_plans, load_profiles
from neo.remix.profiler import read_coco_file, read_coco_image
from neo.remix.runtime import RemixRuntime
from neo.utils.atomic import atomic_path, write_json

LOG_COLUMNS = ("frame", "image_id", "plan_id", "blocks_run", "blocks_skipped", "detections")


def detectors_for_plans(
    models: list[Path], plans: list[Plan], profiles_path: Path, device: str
) -> dict[str, DeployedDetector]:
    """One detector per name the plans use: the model whose stem the profile name starts with.

    ``neo remix profile`` names a detector ``<model stem>_<W>x<H>``; the profile gives the size.
    """
    profiles = load_profiles(profiles_path)
    detectors = {}
    for name in sorted({b.detector_name for p in plans for b in p.blocks}):
        profile = profiles.get(name)
        if profile is None or profile.input_size is None:
            raise ValueError(f"{profiles_path}: no profile with an input_size for {name!r}")
        matches = [m for m in models if name.startswith(f"{Path(m).stem}_")]
        if not matches:
            stems = ", ".join(Path(m).stem for m in models)
            raise ValueError(f"plans use {name!r} but no --models file is named for it ({stems})")
        model = max(matches, key=lambda m: len(Path(m).stem))
        detectors[name] = DeployedDetector(Path(model), profile.input_size, device, name=name)
    return detectors


def category_ids_of(detectors: dict[str, DeployedDetector]) -> list[int]:
    """The dataset category id of each training label, from the models' inference spec."""
    ids = {tuple(d.model.inference.category_ids) for d in detectors.values()}
    if len(ids) != 1:
        raise ValueError("the plans' models were trained on different classes")
    return list(ids.pop())


def coco_frames(data: dict, images: Path, source: str) -> Iterator[tuple[int, np.ndarray]]:
    """``(image id, uint8 RGB frame)`` of every image of a COCO file's ``data``, in order."""
    for image in data["images"]:
        yield int(image["id"]), read_coco_image(images, str(image["file_name"]), source)


def draw_plan(frame: np.ndarray, plan: Plan, detections: Detections) -> np.ndarray:
    """The frame (BGR) with the plan's blocks (yellow, detector name) and the detections (green)."""
    picture = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    for block in plan.blocks:
        cv2.rectangle(picture, (block.x1, block.y1), (block.x2 - 1, block.y2 - 1), (0, 220, 255), 2)
        cv2.putText(picture, block.detector_name, (block.x1 + 4, block.y1 + 18),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 220, 255), 1, cv2.LINE_AA)  # fmt: skip
    for box in detections[0].round().astype(int):
        cv2.rectangle(picture, (box[0], box[1]), (box[2], box[3]), (0, 200, 0), 1)
    return picture


def remix_run(
    models: list[Path],
    plans: Path,
    profiles: Path,
    out: Path,
    video: Path | None = None,
    annotations: Path | None = None,
    images: Path | None = None,
    budget: float | None = None,
    max_frames: int | None = None,
    device: str = "cpu",
    use_skip_windows: bool = True,
    render: bool = False,
    class_agnostic: bool = True,
    padding: float = PADDING,
) -> dict[str, float]:
    """Run Remix plans on a video or COCO image set: detections, per-frame log, AP if labelled.

    Args:
        models: the neo model files the profiles were made from (``neo remix profile``).
        plans: ``plans.json`` from ``neo remix plan``.
        profiles: the ``profiles.json`` the plans were made from.
        out: output folder: ``detections.json`` (COCO results), ``frames.csv`` (plan, blocks run
            and skipped, detections and latency per frame), ``render.mp4`` with ``--render``.
        video: a video file to run on.
        annotations: a COCO file to run on instead (its images, evaluated for AP).
        images: the folder of the COCO file's images (default: the COCO file's folder).
        budget: seconds per frame for the plan controller (default: the slowest plan's estimate).
        max_frames: stop after this many frames.
        device: ``cpu`` or ``cuda``.
        use_skip_windows: skip blocks that keep returning nothing (AIMD windows).
        render: also write ``render.mp4`` with the partition and the detections drawn.
        class_agnostic: evaluate AP ignoring classes (as ``neo remix profile`` measures accuracy).
        padding: crop margin per side as a share of a block's size (as planned with).

    Returns:
        ``frames``, ``mean_latency`` (seconds) and, with annotations, the COCO ``AP``/``AP50``.
    """
    if (video is None) == (annotations is None):
        raise ValueError("give either --video or --annotations")
    plan_list = load_plans(Path(plans), load_profiles(Path(profiles)))
    detectors = detectors_for_plans(models, plan_list, Path(profiles), device)
    budget = budget if budget is not None else max(p.est_lat for p in plan_list)
    runtime = RemixRuntime(
        detectors, plan_list, budget, padding=padding, use_skip_windows=use_skip_windows
    )
    by_id = {p.plan_id: p for p in plan_list}
    category_ids = category_ids_of(detectors)
    import torch  # torch and the task module load when a run starts, not for `--help`

    from neo.tasks.detection import coco_results

    if video is not None:
        from neo.deploy.frames import iter_video_frames

        frames = enumerate(iter_video_frames(Path(video)))
    else:
        ground_truth, source = read_coco_file(Path(annotations))
        frames = coco_frames(ground_truth, Path(images or Path(annotations).parent), source)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    log = io.StringIO()
    writer = csv.writer(log)
    writer.writerow([*LOG_COLUMNS, "latency_ms"])
    latencies = []
    recorder = None
    start = time.perf_counter()
    for index, (image_id, frame) in enumerate(frames):
        if max_frames is not None and index >= max_frames:
            break
        (boxes, scores, labels), seconds = runtime.run_frame(frame)
        entry = runtime.last_frame_log()
        latencies.append(seconds)
        fields = [entry[k] for k in LOG_COLUMNS[2:]]
        writer.writerow([index, image_id, *fields, f"{seconds * 1e3:.2f}"])
        results += coco_results(
            image_id,
            torch.from_numpy(boxes),
            torch.from_numpy(scores),
            [category_ids[int(label)] for label in labels],
        )
        if render:
            picture = draw_plan(frame, by_id[entry["plan_id"]], (boxes, scores, labels))
            if recorder is None:
                recorder = _video_writer(out / "render.mp4", picture.shape[1], picture.shape[0])
            recorder.write(picture)
    if recorder is not None:
        recorder.release()
    if not latencies:
        raise ValueError("no frames to run on")
    write_json(out / "detections.json", results)
    with atomic_path(out / "frames.csv") as tmp:
        tmp.write_text(log.getvalue())
    summary = {"frames": float(len(latencies)), "mean_latency": float(np.mean(latencies))}
    if annotations is not None:
        from neo.metrics.coco import evaluate_coco

        image_ids = [int(im["id"]) for im in ground_truth["images"]][: len(latencies)]
        scored = results
        if class_agnostic:
            ground_truth, scored = one_class(ground_truth, results)
        stats = evaluate_coco(ground_truth, scored, image_ids)
        summary.update(AP=stats["AP"], AP50=stats["AP50"])
    wall = time.perf_counter() - start
    ap = f", AP {summary['AP']:.4f}, AP50 {summary['AP50']:.4f}" if "AP" in summary else ""
    print(
        f"{len(latencies)} frames, mean latency {summary['mean_latency'] * 1e3:.1f} ms "
        f"(budget {budget * 1e3:.1f} ms), {runtime.controller.switches} plan switches{ap}; "
        f"{len(results)} detections -> {out / 'detections.json'} ({wall:.1f} s)"
    )
    return summary


def one_class(ground_truth: dict, results: list[dict]) -> tuple[dict, list[dict]]:
    """Ground truth and detections with every category replaced by one (class-agnostic AP)."""
    annotations = [{**a, "category_id": 1} for a in ground_truth["annotations"]]
    categories = [{"id": 1, "name": "object"}]
    truth = {**ground_truth, "annotations": annotations, "categories": categories}
    return truth, [{**r, "category_id": 1} for r in results]


def _video_writer(path: Path, width: int, height: int) -> cv2.VideoWriter:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (width, height))
    if not writer.isOpened():
        raise ValueError(f"{path}: cannot write the video")
    return writer
