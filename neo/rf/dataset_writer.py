"""SigMF recordings -> spectrogram PNGs + per-image box JSON (the training data format).

Layout of one run, ``out/YYYYMMDD_HHMMSS/``::

    <recording>_<NNN>.png            8-bit grayscale spectrogram, row 0 = highest frequency
    <recording>_<NNN>_bboxes.json    {"image", "width", "height", "bboxes": [{label, x_min, ...}]}
    manifest.json                    settings and, per chunk, its time and frequency span

Every recording is opened and validated before any image is made, and the run is written into a
hidden sibling folder that is renamed into place only when complete, so a failure leaves nothing
half-written under ``out``.
"""

import json
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from neo.rf.boxes import Geometry, chunk_boxes
from neo.rf.recording import Recording
from neo.rf.spectrogram import Spectrogram
from neo.utils.atomic import staging_folder


def find_recordings(input: Path) -> list[Path]:
    """The ``.sigmf-meta`` file itself, or every one in a folder (sorted, not recursive)."""
    input = Path(input)
    if input.is_dir():
        found = sorted(input.glob("*.sigmf-meta"))
        if not found:
            raise FileNotFoundError(f"{input}: no .sigmf-meta files in this folder")
        return found
    if not input.exists():
        raise FileNotFoundError(f"{input}: no such file or folder")
    return [input]


def _run_folder(out: Path) -> Path:
    stamp = time.strftime("%Y%m%d_%H%M%S")
    candidate, suffix = out / stamp, 1
    while candidate.exists():
        candidate, suffix = out / f"{stamp}_{suffix}", suffix + 1
    return candidate


def make_spectrograms(
    input: Path,
    out: Path,
    chunk_duration_s: float = 0.2,
    overlap: float = 0.0,
    nfft: int = 4096,
    hop: int = 2048,
    image_size: int = 1024,
    min_box_px: float = 2.0,
    floor_percentile: float = 10.0,
    ceiling_percentile: float = 99.9,
    min_range_db: float = 20.0,
    device: str = "cpu",
) -> Path:
    """Cut SigMF recordings into chunks and write spectrogram images with their boxes.

    Args:
        input: A ``.sigmf-meta`` file or a folder of them.
        out: Parent folder; the run goes into a new ``out/YYYYMMDD_HHMMSS`` folder.
        chunk_duration_s: Seconds of signal per image; a trailing partial chunk is left out and a
            recording shorter than one chunk is an error.
        overlap: Fraction of a chunk shared with the next, in [0, 1).
        nfft: FFT length.
        hop: Samples between STFT frames.
        image_size: Width and height of the square images in pixels.
        min_box_px: Boxes narrower or shorter than this after clipping to a chunk are dropped.
        floor_percentile: dB percentile of each image mapped to black.
        ceiling_percentile: dB percentile of each image mapped to white.
        min_range_db: Smallest dB range between black and white.
        device: Torch device for the STFT, e.g. ``cpu`` or ``cuda``.

    Returns:
        The run folder holding the images, box files and ``manifest.json``.
    """
    recordings = [Recording(path) for path in find_recordings(input)]
    for recording in recordings:
        recording.chunk_spans(chunk_duration_s, overlap)
        if recording.chunk_samples(chunk_duration_s) < nfft:
            raise ValueError(
                f"{recording.meta_path}: a {chunk_duration_s} s chunk holds fewer than nfft={nfft} "
                "samples"
            )
    names = [r.name for r in recordings]
    if len(set(names)) != len(names):
        raise ValueError(f"{input}: recording names must be unique")
    spectrogram = Spectrogram(
        nfft=nfft,
        hop=hop,
        image_size=image_size,
        floor_percentile=floor_percentile,
        ceiling_percentile=ceiling_percentile,
        min_range_db=min_range_db,
    ).to(device)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    final = _run_folder(out)
    staging = staging_folder(out, f".{final.name}.partial.")
    totals = {"chunks": 0, "boxes": 0, "dropped_boxes": 0, "skipped_annotations": 0}
    entries = []
    try:
        for recording in recordings:
            totals["skipped_annotations"] += recording.skipped_annotations
            geometry = Geometry(
                recording.sample_rate,
                nfft,
                hop,
                recording.chunk_samples(chunk_duration_s),
                image_size,
                image_size,
            )
            for chunk in recording.chunks(chunk_duration_s, overlap):
                stem = f"{recording.name}_{chunk.index:03d}"
                iq = torch.from_numpy(chunk.samples).to(device)
                image = spectrogram(iq).mul_(255.0).round_().to(torch.uint8).cpu().numpy()
                if not cv2.imwrite(str(staging / f"{stem}.png"), np.ascontiguousarray(image)):
                    raise OSError(f"{staging / stem}.png: could not write image")
                boxes, dropped = chunk_boxes(
                    recording.annotations,
                    recording.centre_frequency,
                    chunk.sample_start,
                    geometry,
                    min_box_px,
                )
                record = {
                    "image": f"{stem}.png",
                    "width": image_size,
                    "height": image_size,
                    "bboxes": [box.as_json() for box in boxes],
                }
                (staging / f"{stem}_bboxes.json").write_text(json.dumps(record, indent=1))
                centre = recording.centre_frequency(chunk.sample_start)
                entries.append(
                    {
                        "recording": recording.name,
                        "meta_path": str(recording.meta_path),
                        "chunk": chunk.index,
                        "image": f"{stem}.png",
                        "sample_start": chunk.sample_start,
                        "sample_count": chunk.sample_count,
                        "time_start_s": chunk.sample_start / recording.sample_rate,
                        "time_end_s": (chunk.sample_start + chunk.sample_count)
                        / recording.sample_rate,
                        "centre_frequency_hz": centre,
                        "freq_low_hz": centre - recording.sample_rate / 2,
                        "freq_high_hz": centre + recording.sample_rate / 2,
                        "sample_rate": recording.sample_rate,
                        "num_boxes": len(boxes),
                        "dropped_boxes": dropped,
                    }
                )
                totals["chunks"] += 1
                totals["boxes"] += len(boxes)
                totals["dropped_boxes"] += dropped
        manifest = {
            "settings": {
                "chunk_duration_s": chunk_duration_s,
                "overlap": overlap,
                "nfft": nfft,
                "hop": hop,
                "image_size": image_size,
                "min_box_px": min_box_px,
                "floor_percentile": floor_percentile,
                "ceiling_percentile": ceiling_percentile,
                "min_range_db": min_range_db,
            },
            "labels": sorted({a.label for r in recordings for a in r.annotations}),
            "totals": totals,
            "chunks": entries,
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))
        staging.chmod(0o755)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(
        f"{final}: {totals['chunks']} chunks from {len(recordings)} recording(s), "
        f"{totals['boxes']} boxes, {totals['dropped_boxes']} dropped as too small, "
        f"{totals['skipped_annotations']} annotation(s) skipped"
    )
    return final
