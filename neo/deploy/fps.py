"""Choosing the deployed form of a model for a target frame rate.

:func:`optimize_for_fps` (the seed's entry point, also behind ``neo export --target_fps``) exports
every form of a checkpoint that this machine can run (:func:`available_forms`), measures each
one's speed (:func:`neo.deploy.benchmark.benchmark_model`, on real frames when a video is given)
and accuracy (COCO AP on the same validation images), and picks the most accurate form that
reaches the target FPS, and stays under the power cap where NVML reports power
(:func:`select`). The answer explains the choice, or says that nothing reaches the target and
how fast the fastest form is.

The forms to try are :class:`Candidate` objects: each knows how to build its file and how to
evaluate a file's AP, so the selection can be driven by any exporter.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from neo.deploy.benchmark import BenchmarkResult, benchmark_model
from neo.deploy.frames import model_inputs, source_frames
from neo.utils.atomic import write_json

REPORT_NAME = "fps_report.json"
# what is caught while building, timing or evaluating one candidate (the others still run)
CANDIDATE_ERRORS: tuple[type[BaseException], ...] = (ValueError, RuntimeError, OSError)


@dataclass
class Candidate:
    """One deployable form of the model to try.

    Attributes:
        name: a short label, e.g. ``onnx-int8``.
        format: ``pytorch`` (the checkpoint itself), ``onnx``, ``tensorrt`` or ``torch_tensorrt``.
        precision: ``fp32``, ``fp16`` or ``int8``.
        build: writes the form's file and returns its path (the checkpoint for ``pytorch``).
        evaluate: the COCO AP of a built file on the validation images (the same images for
            every candidate).
    """

    name: str
    format: str
    precision: str
    build: Callable[[], Path]
    evaluate: Callable[[Path], float]


@dataclass
class Measurement:
    """A candidate's speed and accuracy, or why it could not be measured.

    Attributes:
        name: the candidate's label.
        format: its format.
        precision: its precision.
        path: the built file (``None`` if the build failed).
        ap: COCO AP on the validation images.
        fps: images per second at the median latency.
        latency_ms: median latency of one batch.
        batch: images per batch.
        power_w: mean GPU power during the timing (``None`` without NVML).
        error: why it was not measured, else ``None``.
    """

    name: str
    format: str
    precision: str
    path: str | None = None
    ap: float | None = None
    fps: float | None = None
    latency_ms: float | None = None
    batch: int | None = None
    power_w: float | None = None
    error: str | None = None

    @property
    def measured(self) -> bool:
        """Whether both speed and accuracy are known."""
        return self.error is None and self.ap is not None and self.fps is not None


def available_forms(device: str | torch.device) -> list[tuple[str, str]]:
    """The ``(format, precision)`` pairs this machine can build and run on ``device``.

    PyTorch eager FP32 (the reference) and ONNX Runtime FP32 and INT8 always; on a GPU, TensorRT
    engines in FP16 and INT8 when ``tensorrt`` is installed, and Torch-TensorRT FP16 when
    ``torch_tensorrt`` is.
    """
    forms = [("pytorch", "fp32"), ("onnx", "fp32"), ("onnx", "int8")]
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        if importlib.util.find_spec("tensorrt") is not None:
            forms += [("tensorrt", "fp16"), ("tensorrt", "int8")]
        if importlib.util.find_spec("torch_tensorrt") is not None:
            forms.append(("torch_tensorrt", "fp16"))
    return forms


def measure_candidates(
    candidates: list[Candidate], time_model: Callable[[Path], BenchmarkResult]
) -> list[Measurement]:
    """Builds, times and evaluates every candidate in turn.

    A candidate that fails (a missing backend, a build or evaluation error) is kept with its
    error, and the others still run.

    Args:
        candidates: the forms to try.
        time_model: times a built file (e.g. :func:`benchmark_model` on loaded frames).
    """
    measurements = []
    for candidate in candidates:
        entry = Measurement(candidate.name, candidate.format, candidate.precision)
        try:
            path = Path(candidate.build())
            entry.path = str(path)
            timing = time_model(path)
            entry.fps, entry.latency_ms = timing.fps, timing.trt_latency_ms
            entry.batch = timing.engine_batch
            entry.power_w = timing.power_mW / 1000.0 if timing.power_mW is not None else None
            entry.ap = float(candidate.evaluate(path))
        except CANDIDATE_ERRORS as e:
            entry.error = " ".join(str(e).split()) or type(e).__name__
        measurements.append(entry)
    return measurements


def _describe(m: Measurement) -> str:
    power = f", {m.power_w:.1f} W" if m.power_w is not None else ""
    return f"{m.name} (AP {m.ap:.3f}, {m.fps:.1f} FPS{power})"


def select(
    measurements: list[Measurement], target_fps: float, max_power_w: float | None = None
) -> tuple[Measurement | None, str]:
    """The most accurate measured form that reaches ``target_fps`` (and the power cap).

    A form qualifies when its FPS is at least ``target_fps`` and, with ``max_power_w``, its
    measured power is at most the cap (a form without a power reading is not held to the cap,
    and the explanation says so). Ties in AP go to the faster form.

    Returns:
        ``(choice or None, one paragraph explaining it)``.
    """
    measured = [m for m in measurements if m.measured]
    failed = [m for m in measurements if not m.measured]
    cap = f" within {max_power_w:g} W" if max_power_w is not None else ""

    def over_cap(m: Measurement) -> bool:
        return max_power_w is not None and m.power_w is not None and m.power_w > max_power_w

    fast = [m for m in measured if m.fps >= target_fps]  # type: ignore[operator]
    qualified = [m for m in fast if not over_cap(m)]
    notes = []
    if max_power_w is not None and any(m.power_w is None for m in qualified):
        notes.append(
            f"No power reading was available for "
            f"{', '.join(m.name for m in qualified if m.power_w is None)} (NVML needs an NVIDIA "
            f"GPU), so the {max_power_w:g} W cap could not be checked for them."
        )
    if failed:
        notes.append(
            "Not measured: "
            + "; ".join(f"{m.name} ({m.error or 'no result'})" for m in failed)
            + "."
        )
    if not measured:
        return None, " ".join(["No candidate could be built and measured.", *notes])
    if not qualified:
        fastest = max(measured, key=lambda m: m.fps)  # type: ignore[arg-type,return-value]
        text = f"No candidate reaches {target_fps:g} FPS{cap}; the fastest is {_describe(fastest)}."
        capped = [m for m in fast if over_cap(m)]
        if capped:
            text += (
                " Fast enough but over the power cap: " + ", ".join(map(_describe, capped)) + "."
            )
        text += " A smaller input size, a larger batch or a faster GPU can close the gap."
        return None, " ".join([text, *notes])
    choice = max(qualified, key=lambda m: (m.ap, m.fps))  # type: ignore[arg-type,return-value]
    batch = f" per batch of {choice.batch}" if choice.batch else ""
    text = (
        f"{choice.name} is the most accurate form that reaches {target_fps:g} FPS{cap}: AP "
        f"{choice.ap:.3f} at {choice.fps:.1f} FPS ({choice.latency_ms:.1f} ms{batch}"
        + (f", {choice.power_w:.1f} W" if choice.power_w is not None else "")
        + ")."
    )
    better = [m for m in measured if m.ap > choice.ap]  # type: ignore[operator]
    for m in sorted(better, key=lambda m: -m.ap):  # type: ignore[arg-type,operator]
        reason = (
            f"draws {m.power_w:.1f} W, above the cap"
            if over_cap(m) and m.fps >= target_fps  # type: ignore[operator]
            else f"reaches only {m.fps:.1f} FPS"
        )
        text += f" {m.name} is more accurate (AP {m.ap:.3f}) but {reason}."
    return choice, " ".join([text, *notes])


def default_device() -> str:
    """``cuda`` when PyTorch sees a GPU, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def frame_timer(
    video_path: Path | str | None,
    device: str,
    runs: int,
    warmup: int,
    num_frames: int,
    batch: int | None,
) -> Callable[[Path], BenchmarkResult]:
    """Times a model file on frames from ``video_path`` (random frames without a video)."""
    from neo.deploy.runtime import load_model

    frames, source = source_frames(video_path, None, num_frames)

    def time_model(path: Path) -> BenchmarkResult:
        model = load_model(path, device)
        inputs = model_inputs(frames, model.inference, model.input_size, num_frames)
        return benchmark_model(model, inputs, runs, warmup, source, batch)

    return time_model


def optimize_for_fps(
    model_path: Path | str,
    target_fps: float,
    video_path: Path | str | None = None,
    output_path: Path | str | None = None,
    max_power_w: float | None = None,
    candidates: list[Candidate] | None = None,
    device: str | None = None,
    runs: int = 30,
    warmup: int = 5,
    num_frames: int = 32,
    batch: int | None = None,
) -> dict[str, Any]:
    """Exports the forms this machine runs, and picks the most accurate one that meets the FPS.

    Args:
        model_path: the trained checkpoint (``.ckpt``).
        target_fps: frames per second to reach.
        video_path: frames for the timing (and INT8 calibration); random frames without it.
        output_path: folder of the exported candidates and ``fps_report.json`` (default:
            ``<checkpoint stem>_fps`` beside the checkpoint).
        max_power_w: GPU power cap in watts (checked where NVML reports power).
        candidates: the forms to try (default: every form of :func:`available_forms`, built
            by :func:`neo.deploy.export.fps_candidates`).
        device: ``cpu`` or ``cuda`` (default: ``cuda`` when there is a GPU).
        runs: timed runs per candidate.
        warmup: warm-up runs per candidate.
        num_frames: frames read from the video.
        batch: images per run (default: each form's export batch).

    Returns:
        ``target_fps``, ``max_power_w``, ``met`` (whether a form qualifies), ``choice`` (the
        chosen form's measurement, or ``None``), ``candidates`` (every measurement),
        ``explanation``, ``device``, ``report`` (the JSON file written).

    Raises:
        FileNotFoundError: no checkpoint or no video.
        ValueError: a target or cap that is not positive, or an unwritable output folder.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path}: no such checkpoint")
    if not target_fps > 0:
        raise ValueError(f"target_fps {target_fps}: must be positive")
    if max_power_w is not None and not max_power_w > 0:
        raise ValueError(f"max_power_w {max_power_w}: must be positive")
    device = device or default_device()
    output = Path(output_path) if output_path else model_path.with_name(f"{model_path.stem}_fps")
    time_model = frame_timer(video_path, device, runs, warmup, num_frames, batch)
    from neo.utils.atomic import check_writable

    check_writable(output)
    if candidates is None:
        from neo.deploy.export import fps_candidates

        candidates = fps_candidates(
            model_path, output, available_forms(device), video_path=video_path, device=device
        )
    measurements = measure_candidates(candidates, time_model)
    choice, explanation = select(measurements, target_fps, max_power_w)
    result = {
        "model_path": str(model_path),
        "target_fps": target_fps,
        "max_power_w": max_power_w,
        "met": choice is not None,
        "choice": asdict(choice) if choice else None,
        "candidates": [asdict(m) for m in measurements],
        "explanation": explanation,
        "device": device,
        "video": str(video_path) if video_path else None,
    }
    report = output / REPORT_NAME
    write_json(report, result, indent=2)
    result["report"] = str(report)
    print_choice(result)
    return result


def print_choice(result: dict[str, Any]) -> None:
    """The candidates as a table, then the explanation, on the console."""
    from rich.console import Console
    from rich.table import Table

    chosen = (result.get("choice") or {}).get("name")
    table = Table(title=f"forms for {result['target_fps']:g} FPS on {result['device']}")
    for header in ("form", "AP", "FPS", "ms", "W", "note"):
        table.add_column(header, justify="left" if header in ("form", "note") else "right")
    for m in result["candidates"]:

        def number(value: float | None, digits: int) -> str:
            return f"{value:.{digits}f}" if value is not None else ""

        note = "chosen" if m["name"] == chosen else (m["error"] or "")
        table.add_row(
            m["name"],
            number(m["ap"], 3),
            number(m["fps"], 1),
            number(m["latency_ms"], 1),
            number(m["power_w"], 1),
            note[:80],
        )
    console = Console()
    console.print(table)
    console.print(result["explanation"])
