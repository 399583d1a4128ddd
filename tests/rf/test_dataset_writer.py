import json

import cv2
import numpy as np
import pytest
import torch

from neo.rf import make_spectrograms, synth_rf
from neo.rf.boxes import Geometry, annotation_box, box_to_annotation
from neo.rf.recording import Annotation, Recording, RecordingError
from neo.rf.spectrogram import Spectrogram
from tests.helpers.sigmf import write_recording

TINY = dict(chunk_duration_s=0.1, nfft=64, hop=32, image_size=64)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "rec"
    return synth_rf(
        out,
        num_recordings=2,
        duration_s=0.3,
        sample_rate=32e3,
        bursts_per_second=20,
        burst_duration_s=(0.01, 0.04),
        seed=3,
    )


def test_synth_writes_annotated_recordings(synth):
    metas = sorted(synth.glob("*.sigmf-meta"))
    assert [m.name for m in metas] == ["synth_000.sigmf-meta", "synth_001.sigmf-meta"]
    rec = Recording(metas[0])
    assert rec.datatype == "cf32_le" and rec.num_samples == 9600 and rec.skipped_annotations == 0
    assert rec.annotations
    assert {a.label for a in rec.annotations} <= {"tone", "chirp", "psk", "ofdm"}
    for a in rec.annotations:
        assert 2.4e9 - 16e3 < a.freq_lower_edge < a.freq_upper_edge < 2.4e9 + 16e3
    assert not list(synth.parent.glob(".rec.*"))  # no staging folder left


def test_synth_is_deterministic_and_refuses_to_overwrite(synth, tmp_path):
    again = synth_rf(
        tmp_path / "again",
        num_recordings=2,
        duration_s=0.3,
        sample_rate=32e3,
        bursts_per_second=20,
        burst_duration_s=(0.01, 0.04),
        seed=3,
    )
    for name in ("synth_001.sigmf-data", "synth_001.sigmf-meta"):
        assert (again / name).read_bytes() == (synth / name).read_bytes()
    with pytest.raises(ValueError, match=r"again: already exists \(add `--overwrite true`"):
        synth_rf(again)


def test_burst_energy_is_inside_its_box(synth):
    rec = Recording(synth / "synth_000.sigmf-meta")
    a = max(rec.annotations, key=lambda a: a.sample_count)
    x = rec.read(a.sample_start, a.sample_count)
    spectrum = np.abs(np.fft.fftshift(np.fft.fft(x))) ** 2
    freqs = np.fft.fftshift(np.fft.fftfreq(len(x), 1 / rec.sample_rate)) + 2.4e9
    inside = (freqs >= a.freq_lower_edge - 300) & (freqs <= a.freq_upper_edge + 300)
    # in-band SNR >= 6 dB: in-band power density at least ~(1 + 4) times the noise density
    assert spectrum[inside].mean() / spectrum[~inside].mean() > 3.0


def test_end_to_end_format(synth, tmp_path):
    run = make_spectrograms(synth, tmp_path / "spec", **TINY)
    assert run.parent == tmp_path / "spec"
    assert len(run.name) == 15 and run.name[8] == "_"  # YYYYMMDD_HHMMSS
    pngs = sorted(p.name for p in run.glob("*.png"))
    assert pngs == [f"synth_{r:03d}_{c:03d}.png" for r in range(2) for c in range(3)]
    image = cv2.imread(str(run / pngs[0]), cv2.IMREAD_UNCHANGED)
    assert image.shape == (64, 64) and image.dtype == np.uint8
    record = json.loads((run / "synth_000_000_bboxes.json").read_text())
    assert set(record) == {"image", "width", "height", "bboxes"}
    assert record["image"] == "synth_000_000.png" and record["width"] == record["height"] == 64
    for box in record["bboxes"]:
        assert set(box) == {"label", "x_min", "y_min", "x_max", "y_max"}
        assert 0 <= box["x_min"] < box["x_max"] <= 64 and 0 <= box["y_min"] < box["y_max"] <= 64
    manifest = json.loads((run / "manifest.json").read_text())
    assert len(manifest["chunks"]) == 6
    second = manifest["chunks"][1]
    assert second["sample_start"] == 3200 and second["sample_count"] == 3200
    assert second["time_start_s"] == pytest.approx(0.1) and second["time_end_s"] == pytest.approx(
        0.2
    )
    assert second["freq_low_hz"] == pytest.approx(2.4e9 - 16e3)
    total = sum(len(json.loads(p.read_text())["bboxes"]) for p in run.glob("*_bboxes.json"))
    assert total == manifest["totals"]["boxes"] > 0


def test_boxes_land_on_bright_pixels(synth, tmp_path):
    run = make_spectrograms(synth, tmp_path / "spec", **TINY)
    inside, outside = [], []
    for path in run.glob("*_bboxes.json"):
        record = json.loads(path.read_text())
        image = cv2.imread(str(run / record["image"]), cv2.IMREAD_GRAYSCALE).astype(float)
        mask = np.zeros_like(image, dtype=bool)
        for b in record["bboxes"]:
            rows = slice(int(b["y_min"]), int(np.ceil(b["y_max"])))
            mask[rows, int(b["x_min"]) : int(np.ceil(b["x_max"]))] = True
        if mask.any():
            inside.append(image[mask].mean())
        outside.append(image[~mask].mean())
    assert np.mean(inside) > np.mean(outside) + 30


def test_single_file_input_and_overlap(synth, tmp_path, capsys):
    run = make_spectrograms(synth / "synth_001.sigmf-meta", tmp_path / "o", overlap=0.5, **TINY)
    assert len(list(run.glob("*.png"))) == 5  # 0.3 s, 0.1 s chunks every 0.05 s
    assert "5 chunks" in capsys.readouterr().out


def test_bad_recording_fails_before_publishing(synth, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for suffix in ("sigmf-meta", "sigmf-data"):
        (folder / f"good.{suffix}").write_bytes((synth / f"synth_000.{suffix}").read_bytes())
    write_recording(folder, "zbad", np.zeros(10, "<c8"), write_data=False)
    out = tmp_path / "out"
    with pytest.raises(RecordingError, match=r"zbad\.sigmf-meta"):
        make_spectrograms(folder, out, **TINY)
    assert not out.exists() or list(out.iterdir()) == []


def test_failure_mid_run_leaves_nothing(synth, tmp_path, monkeypatch):
    import neo.rf.dataset_writer as writer

    calls = []

    def failing_imwrite(path, image):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        return cv2.imwrite(path, image)

    monkeypatch.setattr(writer.cv2, "imwrite", failing_imwrite)
    out = tmp_path / "out"
    with pytest.raises(OSError, match=r"disk full"):
        make_spectrograms(synth, out, **TINY)
    assert list(out.iterdir()) == []


def test_short_recording_is_an_error(tmp_path):
    path = write_recording(tmp_path, "short", np.zeros(50, "<c8"), sample_rate=1000.0)
    with pytest.raises(RecordingError, match=r"short\.sigmf-meta: recording is shorter than"):
        make_spectrograms(
            path, tmp_path / "out", chunk_duration_s=0.1, nfft=16, hop=8, image_size=16
        )


def test_missing_input(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no \.sigmf-meta files"):
        make_spectrograms(tmp_path, tmp_path / "out")


def _half_power_edges(profile: np.ndarray, x_scale: float) -> list[float]:
    """Half-power crossings of a per-frame power profile, in pixels.

    Interpolated between frame centres; frame j is drawn over pixels [j, j + 1) · x_scale.
    """
    half = profile.max() / 2
    centres = (np.arange(len(profile)) + 0.5) * x_scale
    edges = []
    for j in np.flatnonzero((profile[:-1] < half) != (profile[1:] < half)):
        a, b = profile[j], profile[j + 1]
        edges.append(centres[j] + (half - a) / (b - a) * x_scale)
    return edges


def test_box_edges_sit_on_the_half_power_edges_of_the_burst(tmp_path):
    fs, nfft, hop, size = 1e6, 4096, 2048, 1024
    samples = 200_000  # one 0.2 s chunk: 96 frames -> 10.67 px per frame
    iq = np.zeros(samples, np.complex64)
    # one burst aligned on frame halves, one a quarter frame off
    bursts = [(nfft // 2 + 41 * hop // 2, 30 * hop), (nfft // 2 + 241 * hop // 4, 35 * hop // 2)]
    t = np.arange(samples)
    for start, count in bursts:
        iq[start : start + count] = np.exp(2j * np.pi * 0.1 * t[start : start + count])
    annotations = [
        {
            "core:sample_start": start,
            "core:sample_count": count,
            "core:freq_lower_edge": 0.05e6,
            "core:freq_upper_edge": 0.15e6,
            "core:label": "tone",
        }
        for start, count in bursts
    ]
    meta = write_recording(tmp_path, "rec", iq, sample_rate=fs, annotations=annotations)
    run = make_spectrograms(
        meta, tmp_path / "out", chunk_duration_s=0.2, nfft=nfft, hop=hop, image_size=size
    )
    boxes = json.loads((run / "rec_000_bboxes.json").read_text())["bboxes"]
    frames = 1 + (samples - nfft) // hop
    x_scale = size / frames
    power = Spectrogram(nfft, hop, image_size=size).power(torch.from_numpy(iq)).sum(0).numpy()
    per_frame = power[((np.arange(frames) + 0.5) * x_scale).astype(int)]
    edges = _half_power_edges(per_frame, x_scale)
    assert len(edges) == 4 and len(boxes) == 2
    box_edges = [x for b in boxes for x in (b["x_min"], b["x_max"])]
    assert np.abs(np.array(box_edges) - np.array(edges)).max() <= 2.0


def test_round_trip_annotation_box_annotation_at_full_size():
    geometry = Geometry(1e6, 4096, 2048, 200_000, 1024, 1024)
    original = Annotation(123_457, 54_321, 2.4e9 - 1e5, 2.4e9 + 2e5, "psk")
    box = annotation_box(original, 2.4e9, 100_000, geometry)
    back = box_to_annotation(box, 100_000, 2.4e9, geometry)
    assert back["core:sample_start"] == original.sample_start
    assert back["core:sample_count"] == original.sample_count
    assert back["core:freq_lower_edge"] == pytest.approx(original.freq_lower_edge)
    assert back["core:freq_upper_edge"] == pytest.approx(original.freq_upper_edge)
