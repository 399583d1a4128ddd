"""``neo rf detect``: stream a SigMF recording through one or more trained spectrogram detectors.

The recording is read chunk by chunk (``--chunk_duration_s``, 200 ms by default); each chunk's
spectrogram is computed once and shared by all models (:class:`neo.inference.MultiModelDetector`).
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
from pathlib import Path

import torch
from jsonargparse import ArgumentParser

from neo.rf.boxes import Box, Geometry, box_to_annotation
from neo.rf.recording import Recording
from neo.utils.atomic import atomic_path, write_json

DEFAULT_SPECTROGRAM = {"nfft": 4096, "hop": 2048, "image_size": 1024}


def detect(
    models: list[Path],
    input: Path,
    out: Path,
    chunk_duration_s: float = 0.2,
    deadline_ms: float = 400.0,
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
    nfft: int | None = None,
    hop: int | None = None,
    image_size: int | None = None,
    device: str = "cpu",
) -> dict:
    """Detect signals in a SigMF recording with one or more trained models.

    Args:
        models: ``.ckpt`` files of spectrogram detectors (``neo fit`` / ``neo cv`` output).
        input: the recording's ``.sigmf-meta`` file.
        out: output folder.
        chunk_duration_s: seconds of signal per spectrogram.
        deadline_ms: latency budget per chunk in milliseconds.
        score_threshold: lowest score of a reported detection.
        iou_threshold: IoU of the class-aware merge of the models' detections.
        nfft: FFT length (default: the first model's training data, else 4096).
        hop: STFT hop (default: the first model's training data, else 2048).
        image_size: side of the shared spectrogram image (default: as for nfft, else 1024).
        device: torch device, e.g. ``cpu`` or ``cuda``.

    Returns:
        The summary written to ``<rec>.detections.json`` (without the detections list).
    """
    from neo.inference import MultiModelDetector
    from neo.rf.spectrogram import Spectrogram

    if not models:
        raise ValueError("give at least one model with --models")
    recording = Recording(input)
    if Path(out).resolve() == recording.meta_path.parent.resolve():
        raise ValueError(f"{out}: choose an output folder other than the recording's own folder")
    detector = MultiModelDetector.from_checkpoints(models, device, score_threshold, iou_threshold)
    trained = {**DEFAULT_SPECTROGRAM, **detector.models[0].spectrogram}
    nfft = int(nfft or trained["nfft"])
    hop = int(hop or trained["hop"])
    image_size = int(image_size or trained["image_size"])
    chunk_samples = recording.chunk_samples(chunk_duration_s)
    geometry = Geometry(recording.sample_rate, nfft, hop, chunk_samples, image_size, image_size)
    spectrogram_kwargs = {
        k: trained[k]
        for k in ("floor_percentile", "ceiling_percentile", "min_range_db")
        if k in trained
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


def build_parser() -> ArgumentParser:
    """The ``neo rf`` parser (verb ``detect``)."""
    parser = ArgumentParser(prog="neo rf", description="RF tools: detection on SigMF recordings.")
    subcommands = parser.add_subcommands(dest="verb")
    sub = ArgumentParser(description=(detect.__doc__ or "").strip().split("\n")[0])
    sub.add_function_arguments(detect, as_positional=False)
    subcommands.add_subcommand(
        "detect", sub, help="detect signals in a recording with trained models"
    )
    return parser


def models_as_list(argv: list[str]) -> list[str]:
    """Accepts ``--models A.ckpt B.ckpt`` (space separated) besides jsonargparse's JSON list."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] != "--models":
            out.append(argv[i])
            i += 1
            continue
        j = i + 1
        while j < len(argv) and not argv[j].startswith("--"):
            j += 1
        values = argv[i + 1 : j]
        if len(values) == 1 and values[0].lstrip().startswith("["):
            out += ["--models", values[0]]
        else:
            out += ["--models", json.dumps(values)]
        i = j
    return out


def run(argv: list[str]) -> int:
    """Runs ``neo rf detect ...``; returns the exit code."""
    cfg = build_parser().parse_args(models_as_list(argv))
    kwargs = cfg[cfg.verb].as_dict()
    kwargs.pop("__path__", None)
    detect(**kwargs)
    return 0
