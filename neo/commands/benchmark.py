"""``neo benchmark``: time checkpoints and exported models on real frames, write a CSV.

``neo benchmark --model A.ckpt B.onnx C.engine D.ep --video clip.mp4`` loads each model in
turn (PyTorch eager, ONNX Runtime, TensorRT, Torch-TensorRT; mixed freely), brings the video's
frames to its input size as neo's evaluation does, and times it
(:func:`neo.deploy.benchmark.benchmark_model`). The results are appended to the CSV
(``--output``), shown as a table and drawn as latency bars beside the CSV (``.png``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from jsonargparse import ArgumentParser

from neo.utils.atomic import check_writable


def check_models(models: list[Path], device: str) -> None:
    """Fails before any timing on a missing file, an unknown kind, or a missing backend or GPU."""
    from neo.deploy import tensorrt
    from neo.deploy.runtime import ENGINE_SUFFIXES, MODEL_SUFFIXES, PROGRAM_SUFFIXES

    if not models:
        raise ValueError("give at least one model with --model")
    for path in models:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such model file")
        suffix = path.suffix.lower()
        if suffix not in MODEL_SUFFIXES:
            raise ValueError(
                f"{path}: unknown model type {suffix or '(no suffix)'} (expected one of "
                f"{', '.join(MODEL_SUFFIXES)})"
            )
        if suffix in ENGINE_SUFFIXES:
            tensorrt.require_tensorrt()
            tensorrt.require_gpu()
        elif suffix in PROGRAM_SUFFIXES:
            tensorrt.require_torch_tensorrt()
            tensorrt.require_gpu()
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: PyTorch sees no GPU on this machine")


def benchmark(
    model: list[Path],
    video: Path | None = None,
    images: Path | None = None,
    frames: int = 32,
    runs: int = 50,
    warmup: int = 10,
    batch: int | None = None,
    input_size: tuple[int, int] | None = None,
    device: str = "cpu",
    output: Path = Path("benchmark.csv"),
    append: bool = True,
) -> list[Any]:
    """Time checkpoints and exported models (latency, FPS, memory, GPU power) and write a CSV.

    Args:
        model: ``.ckpt``, ``.onnx``, ``.engine``/``.plan`` or ``.ep`` files, mixed freely.
        video: frames sampled evenly from this video (``frame_source_name``: its stem).
        images: else frames from this image folder (else random frames).
        frames: how many frames to read (each run takes the next batch of them).
        runs: timed runs per model.
        warmup: untimed runs before them.
        batch: images per run (default: each model's export batch, else 1).
        input_size: ``H W`` for checkpoints and dynamic-size exports (default: the model's size).
        device: ``cpu`` or ``cuda`` (TensorRT forms always run on the GPU).
        output: the CSV file.
        append: keep the rows already in ``output`` (else replace the file).

    Returns:
        One :class:`neo.deploy.benchmark.BenchmarkResult` per model, in the order given.
    """
    from neo.deploy.onnx_export import check_input_size

    models = [Path(m) for m in model]
    if video is not None and images is not None:
        raise ValueError("give --video or --images, not both")
    if frames < 1:
        raise ValueError(f"--frames {frames}: must be at least 1")
    if batch is not None and batch < 1:
        raise ValueError(f"--batch {batch}: must be at least 1")
    size = check_input_size(input_size) if input_size is not None else None
    output = Path(output)
    check_models(models, device)
    check_writable(output.parent)
    from neo.deploy.benchmark import benchmark_model, print_table, save_latency_plot, write_csv
    from neo.deploy.frames import model_inputs, source_frames
    from neo.deploy.runtime import load_model

    raw, source = source_frames(video, images, frames)
    results = []
    for path in models:
        loaded = load_model(path, device)
        model_size = loaded.input_size
        if size is not None and size != tuple(model_size):
            if loaded.spec is not None and not loaded.spec.dynamic_size:
                raise ValueError(
                    f"{path}: exported for {model_size[0]}x{model_size[1]} only; benchmark it "
                    "without --input_size (or export with --dynamic)"
                )
            model_size = size
        inputs = model_inputs(raw, loaded.inference, model_size, frames)
        results.append(benchmark_model(loaded, inputs, runs, warmup, source, batch))
        del loaded
    write_csv(output, results, append)
    print_table(results, title=f"neo benchmark ({source} frames) -> {output}")
    plot = save_latency_plot(
        output.with_suffix(".png"), results, f"neo benchmark ({source} frames)"
    )
    print(f"latency bars: {plot}")
    return results


def description() -> str:
    """One line (the help of ``neo benchmark``)."""
    return "time checkpoints and exported models on real frames (CSV + table)"


def add_verbs(parser: ArgumentParser) -> None:
    """Adds the options of :func:`benchmark` to the ``neo benchmark`` parser."""
    parser.add_argument(
        "--model",
        type=str,
        nargs="+",
        required=True,
        help="model files (.ckpt, .onnx, .engine, .ep), space separated or as a JSON list",
    )
    parser.add_function_arguments(benchmark, as_positional=False, skip={"model"})


def run(config: Any) -> int:
    """Runs ``neo benchmark`` from its parsed options; returns the exit code."""
    from neo.commands.rf_detect import models_as_list

    kwargs = config.as_dict()
    kwargs.pop("__path__", None)
    kwargs["model"] = models_as_list(kwargs["model"])
    if kwargs.get("input_size") is not None:
        kwargs["input_size"] = tuple(kwargs["input_size"])
    benchmark(**kwargs)
    return 0
