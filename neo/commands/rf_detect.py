"""``neo rf detect``: stream a SigMF recording through one or more trained spectrogram detectors.

The models are checkpoints (``.ckpt``) or exported models (``.onnx`` run by ONNX Runtime,
TensorRT engines ``.engine``/``.plan`` and Torch-TensorRT programs ``.ep`` on a GPU), mixed
freely. The recording is read chunk by chunk; each chunk's spectrogram is computed once and shared
by all models (:class:`neo.inference.MultiModelDetector`). The chunk duration and the STFT settings
are those the first model was trained with (the inference spec of its checkpoint or of its export
sidecar); a value given on the command line that differs from a model's training value is used
with a warning.
The latency of every chunk (spectrogram + all models + merge, excluding the file read) is measured
against ``--deadline_ms``; misses are counted and reported.

Outputs in ``--out`` (each written atomically):

- ``<rec>.detections.json``: settings, latency statistics, missed deadlines and every detection
  (chunk, model_id, model, label, score, box in pixels, sample_start, sample_count,
  freq_lower_edge, freq_upper_edge in Hz).
- ``<rec>.sigmf-meta``: a copy of the input metadata whose annotations are the detections
  (``core:label``, sample span, frequency edges, plus ``neo:score``, ``neo:model_id`` and
  ``neo:model``; the input's own annotations are not carried over). The samples are not copied:
  ``<rec>.sigmf-data`` next to it is a symbolic link to the input's data file, so the pair opens
  as a recording (``sigmf.fromfile``); ``neo:source`` in ``global`` names the input metadata.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from jsonargparse import ArgumentParser

from neo.rf.boxes import Box, Geometry, box_to_annotation
from neo.rf.recording import Recording
from neo.utils.atomic import atomic_path, write_json

# used only where a model does not record a setting
DEFAULT_SPECTROGRAM = {"nfft": 4096, "hop": 2048, "image_size": 1024, "chunk_duration_s": 0.2}
SETTINGS = (
    "chunk_duration_s",
    "nfft",
    "hop",
    "image_size",
    "floor_percentile",
    "ceiling_percentile",
    "min_range_db",
)


def spectrogram_settings(
    trained: list[tuple[str, dict[str, Any]]], given: dict[str, Any]
) -> dict[str, Any]:
    """The shared spectrogram's settings: given values, else the first model's training values.

    Args:
        trained: ``(model name, spectrogram settings of its training data)`` per model.
        given: values from the command line; ``None`` means "from the first model".

    Returns:
        Every setting of :data:`SETTINGS` known from either source (plus defaults for the chunk
        duration and STFT size). A warning names each model trained with another value (except
        ``image_size``: each model gets the shared image resized to its own input size).
    """
    first = trained[0][1] if trained else {}
    settings = {
        **DEFAULT_SPECTROGRAM,
        **{k: first[k] for k in SETTINGS if first.get(k) is not None},
    }
    settings.update({k: v for k, v in given.items() if v is not None})
    for name, values in trained:
        for key in SETTINGS[:2] + SETTINGS[4:]:
            value = values.get(key)
            if value is not None and key in settings and float(value) != float(settings[key]):
                source = "given" if given.get(key) is not None else "taken from the first model"
                warnings.warn(
                    f"{key} {settings[key]:g} ({source}) differs from the {value:g} model "
                    f"{name} was trained with; its detections may suffer",
                    stacklevel=2,
                )
    return settings


def detect(
    models: list[Path],
    input: Path,
    out: Path,
    chunk_duration_s: float | None = None,
    deadline_ms: float = 400.0,
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
    nfft: int | None = None,
    hop: int | None = None,
    image_size: int | None = None,
    floor_percentile: float | None = None,
    ceiling_percentile: float | None = None,
    min_range_db: float | None = None,
    device: str = "cpu",
) -> dict:
    """Detect signals in a SigMF recording with one or more trained models.

    The spectrogram settings left unset are those the first model was trained with (stored in
    its checkpoint or export sidecar); one given with a different value is used, with a warning.

    Args:
        models: spectrogram detectors: ``.ckpt`` files (``neo fit`` / ``neo cv`` output) or
            models exported by ``neo export`` (``.onnx``, ``.engine``/``.plan``, ``.ep``).
        input: the recording's ``.sigmf-meta`` file.
        out: output folder.
        chunk_duration_s: seconds of signal per spectrogram (default: the training chunks').
        deadline_ms: latency budget per chunk in milliseconds.
        score_threshold: lowest score of a reported detection.
        iou_threshold: IoU of the class-aware merge of the models' detections.
        nfft: FFT length (default: the training data's).
        hop: STFT hop (default: the training data's).
        image_size: side of the shared spectrogram image (default: the training data's).
        floor_percentile: percentile mapped to black (default: the training data's).
        ceiling_percentile: percentile mapped to white (default: the training data's).
        min_range_db: smallest dB range of the grey scale (default: the training data's).
        device: torch device, e.g. ``cpu`` or ``cuda``.

    Returns:
        The summary written to ``<rec>.detections.json`` (without the detections list).
    """
    from neo.inference.multi_model import MultiModelDetector
    from neo.rf.spectrogram import Spectrogram

    if not models:
        raise ValueError("give at least one model with --models")
    recording = Recording(input)
    if Path(out).resolve() == recording.meta_path.parent.resolve():
        raise ValueError(f"{out}: choose an output folder other than the recording's own folder")
    detector = MultiModelDetector.from_paths(models, device, score_threshold, iou_threshold)
    given = {
        "chunk_duration_s": chunk_duration_s,
        "nfft": nfft,
        "hop": hop,
        "image_size": image_size,
        "floor_percentile": floor_percentile,
        "ceiling_percentile": ceiling_percentile,
        "min_range_db": min_range_db,
    }
    settings = spectrogram_settings(
        [(m.name, m.inference.spectrogram or {}) for m in detector.models], given
    )
    chunk_duration_s = float(settings["chunk_duration_s"])
    nfft, hop, image_size = (int(settings[k]) for k in ("nfft", "hop", "image_size"))
    chunk_samples = recording.chunk_samples(chunk_duration_s)
    geometry = Geometry(recording.sample_rate, nfft, hop, chunk_samples, image_size, image_size)
    spectrogram_kwargs = {
        k: settings[k]
        for k in ("floor_percentile", "ceiling_percentile", "min_range_db")
        if k in settings
    }
    spectrogram = Spectrogram(nfft=nfft, hop=hop, image_size=image_size, **spectrogram_kwargs).to(
        device
    )

    detections, annotations, latencies = [], [], []
    missed = 0
    for chunk in recording.chunks(chunk_duration_s):
        started = time.perf_counter()
        image = spectrogram(torch.from_numpy(chunk.samples).to(device))
        found = detector(image)
        latency = (time.perf_counter() - started) * 1000.0
        latencies.append(latency)
        missed += latency > deadline_ms
        centre = recording.centre_frequency(chunk.sample_start)
        for box, score, label, model_id in zip(
            found.boxes.tolist(), found.scores.tolist(), found.labels, found.model_ids.tolist()
        ):
            annotation = box_to_annotation(
                Box(label, *box), chunk.sample_start, centre, geometry, recording.offset
            )
            model_name = detector.models[model_id].name
            detections.append(
                {
                    "chunk": chunk.index,
                    "model_id": model_id,
                    "model": model_name,
                    "label": label,
                    "score": round(float(score), 5),
                    "box": [round(v, 2) for v in box],
                    "sample_start": annotation["core:sample_start"],
                    "sample_count": annotation["core:sample_count"],
                    "freq_lower_edge": annotation["core:freq_lower_edge"],
                    "freq_upper_edge": annotation["core:freq_upper_edge"],
                }
            )
            annotations.append(
                {
                    **annotation,
                    "neo:score": round(float(score), 5),
                    "neo:model_id": model_id,
                    "neo:model": model_name,
                }
            )
    summary = {
        "recording": str(recording.meta_path),
        "models": [str(p) for p in models],
        "device": device,
        "settings": {
            "chunk_duration_s": chunk_duration_s,
            "nfft": nfft,
            "hop": hop,
            "image_size": image_size,
            **spectrogram_kwargs,
            "score_threshold": score_threshold,
            "iou_threshold": iou_threshold,
        },
        "chunks": len(latencies),
        "deadline_ms": deadline_ms,
        "missed_deadlines": missed,
        "latency_ms": {
            "mean": statistics.fmean(latencies),
            "median": statistics.median(latencies),
            "max": max(latencies),
        },
        "num_detections": len(detections),
    }
    out = Path(out)
    write_json(out / f"{recording.name}.detections.json", {**summary, "detections": detections}, 1)
    write_sigmf(recording, annotations, out)
    lat = summary["latency_ms"]
    print(
        f"{recording.name}: {len(detections)} detections in {len(latencies)} chunks with "
        f"{len(detector.models)} model(s); latency mean {lat['mean']:.1f} ms, "
        f"max {lat['max']:.1f} ms; "
        f"{missed} of {len(latencies)} chunks missed the {deadline_ms:g} ms deadline -> {out}"
    )
    return summary


def write_sigmf(recording: Recording, annotations: list[dict], out: Path) -> Path:
    """The input metadata with ``annotations`` as its annotations, beside a link to its data."""
    meta = json.loads(recording.meta_path.read_text())
    data_file = recording.meta_path.with_name(
        meta["global"].get("core:dataset") or f"{recording.name}.sigmf-data"
    ).resolve()
    meta["global"].pop("core:dataset", None)
    meta["global"]["neo:source"] = str(recording.meta_path.resolve())
    meta["annotations"] = sorted(annotations, key=lambda a: a["core:sample_start"])
    out.mkdir(parents=True, exist_ok=True)
    link = out / f"{recording.name}.sigmf-data"
    if link.resolve() != data_file:
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(data_file, link)
    path = out / f"{recording.name}.sigmf-meta"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    return path


def description() -> str:
    """One line naming the verbs (the help of ``neo rf``)."""
    return "RF tools: detection on SigMF recordings (neo rf detect)"


def add_verbs(parser: ArgumentParser) -> None:
    """Adds ``detect`` to the ``neo rf`` parser (already a subcommand of ``neo``)."""
    subcommands = parser.add_subcommands()
    sub = type(parser)(description=(detect.__doc__ or "").strip().split("\n")[0])
    sub.add_argument(
        "--models",
        type=str,
        nargs="+",
        required=True,
        help="spectrogram detectors: ``.ckpt`` files (``neo fit`` / ``neo cv`` output) or "
        "exported models (``.onnx``, ``.engine``/``.plan``, ``.ep``, each with its ``neo export`` "
        "sidecar), mixed freely, space separated or as a JSON list",
    )
    sub.add_function_arguments(detect, as_positional=False, skip={"models"})
    subcommands.add_subcommand(
        "detect", sub, help="detect signals in a recording with trained models"
    )


def models_as_list(values: list[str]) -> list[Path]:
    """``--models A.ckpt B.ckpt`` (space separated) or ``--models '["A.ckpt", "B.ckpt"]'``."""
    paths = []
    for value in values:
        if value.lstrip().startswith("["):
            try:
                paths += [Path(v) for v in json.loads(value)]
            except (json.JSONDecodeError, TypeError):
                raise ValueError(f"--models {value}: not a JSON list of paths") from None
        else:
            paths.append(Path(value))
    return paths


def run(config: Any) -> int:
    """Runs ``neo rf <verb>`` from its parsed options; returns the exit code."""
    kwargs = config[config.subcommand].as_dict()
    kwargs.pop("__path__", None)
    kwargs["models"] = models_as_list(kwargs["models"])
    detect(**kwargs)
    return 0
