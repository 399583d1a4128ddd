"""Synthetic annotated SigMF recordings: bursts of four signal classes over complex white noise.

Classes (``core:label``): ``tone`` (a carrier), ``chirp`` (linear sweep across its band), ``psk``
(QPSK with raised-cosine spectrum, narrowband) and ``ofdm`` (many QPSK subcarriers, wideband).
Every burst is annotated with its exact sample span and frequency edges (absolute Hz: capture
centre frequency plus offset). PSK and OFDM bands are exact (the spectrum is zero outside them
apart from the short on/off ramps); a chirp's edges are its sweep limits; a tone has no width, so
its box is the tone ± ``tone_box_fraction · fs / 2``. Bursts never overlap in time-frequency.

SNR is in-band: burst power over the noise power that falls inside the burst's band.
"""

import shutil
from pathlib import Path
from typing import Literal

import numpy as np
import sigmf

from neo.rf.wideband import jitter_annotations, wideband_signals
from neo.utils.atomic import staging_folder

CLASSES = ("tone", "chirp", "psk", "ofdm")
_NOISE_POWER = 1e-2


def _ramp_envelope(n: int, ramp: int) -> np.ndarray:
    env = np.ones(n, dtype=np.float64)
    if ramp > 0:
        rise = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        env[:ramp] = rise
        env[n - ramp :] = rise[::-1]
    return env


def _bandlimited_qpsk(rng: np.random.Generator, n: int, bandwidth_frac: float) -> np.ndarray:
    """QPSK at symbol rate bw/(1+α) shaped with a raised-cosine spectrum (α = 0.35), unit power."""
    alpha = 0.35
    symbol_rate = bandwidth_frac / (1 + alpha)
    sps = max(2, round(1 / symbol_rate))
    symbols = (rng.integers(0, 2, n // sps + 1) * 2 - 1) + 1j * (
        rng.integers(0, 2, n // sps + 1) * 2 - 1
    )
    pulses = np.zeros(n, dtype=np.complex128)
    pulses[::sps] = symbols[: len(pulses[::sps])]
    freqs = np.abs(np.fft.fftfreq(n))
    rs = 1.0 / sps
    f1, f2 = (1 - alpha) * rs / 2, (1 + alpha) * rs / 2
    shape = np.where(freqs <= f1, 1.0, 0.0)
    band = (freqs > f1) & (freqs < f2)
    shape[band] = 0.5 * (1 + np.cos(np.pi * (freqs[band] - f1) / (f2 - f1)))
    sig = np.fft.ifft(np.fft.fft(pulses) * shape)
    return sig / np.sqrt(np.mean(np.abs(sig) ** 2))


def _ofdm(rng: np.random.Generator, n: int, bandwidth_frac: float) -> np.ndarray:
    """QPSK subcarriers filling ``bandwidth_frac`` of the band, unit power."""
    size = 256
    used = max(4, round(bandwidth_frac * size))
    bins = (np.arange(used) - used // 2) % size
    blocks = -(-n // size)
    grid = np.zeros((blocks, size), dtype=np.complex128)
    grid[:, bins] = (rng.integers(0, 2, (blocks, used)) * 2 - 1) + 1j * (
        rng.integers(0, 2, (blocks, used)) * 2 - 1
    )
    sig = np.fft.ifft(grid, axis=1).reshape(-1)[:n]
    return sig / np.sqrt(np.mean(np.abs(sig) ** 2))


def _burst(rng: np.random.Generator, label: str, n: int, bandwidth_frac: float) -> np.ndarray:
    """Unit-power baseband burst of ``n`` samples centred on 0 Hz."""
    t = np.arange(n)
    if label == "tone":
        return np.ones(n, dtype=np.complex128)
    if label == "chirp":
        # instantaneous frequency sweeps -bw/2 .. +bw/2 (cycles per sample)
        phase = 2 * np.pi * (-bandwidth_frac / 2 * t + bandwidth_frac / (2 * n) * t**2)
        return np.exp(1j * phase)
    if label == "psk":
        return _bandlimited_qpsk(rng, n, bandwidth_frac)
    return _ofdm(rng, n, bandwidth_frac)


def _recording(
    rng: np.random.Generator,
    num_samples: int,
    sample_rate: float,
    bursts_per_second: float,
    burst_duration_s: tuple[float, float],
    snr_db: tuple[float, float],
    tone_box_fraction: float,
) -> tuple[np.ndarray, list[dict]]:
    bandwidths = {
        "tone": (tone_box_fraction,) * 2,
        "chirp": (0.05, 0.2),
        "psk": (0.02, 0.08),
        "ofdm": (0.15, 0.35),
    }
    data = (rng.standard_normal(num_samples) + 1j * rng.standard_normal(num_samples)) * np.sqrt(
        _NOISE_POWER / 2
    )
    wanted = max(1, round(bursts_per_second * num_samples / sample_rate))
    placed: list[tuple[int, int, float, float]] = []
    bursts = []
    for _ in range(wanted * 20):
        if len(placed) == wanted:
            break
        label = CLASSES[rng.integers(len(CLASSES))]
        bw = rng.uniform(*bandwidths[label])
        n = min(num_samples, int(rng.uniform(*burst_duration_s) * sample_rate))
        start = int(rng.integers(0, num_samples - n + 1))
        centre = rng.uniform(-0.47 + bw / 2, 0.47 - bw / 2)
        lo, hi = centre - bw / 2, centre + bw / 2
        if any(start < e and s < start + n and lo < h and f < hi for s, e, f, h in placed):
            continue
        placed.append((start, start + n, lo, hi))
        snr = 10 ** (rng.uniform(*snr_db) / 10)
        amplitude = np.sqrt(snr * _NOISE_POWER * bw)
        sig = _burst(rng, label, n, bw) * _ramp_envelope(n, min(n // 20, 64))
        sig *= np.exp(2j * np.pi * centre * np.arange(n))
        data[start : start + n] += amplitude * sig
        bursts.append({"label": label, "start": start, "count": n, "lo": lo, "hi": hi})
    return data.astype(np.complex64), bursts


def _wideband_recording(
    rng: np.random.Generator,
    num_samples: int,
    sample_rate: float,
    num_signals: int,
    snr_db: tuple[float, float],
    tone_box_fraction: float,
    annotation_jitter: float,
) -> tuple[np.ndarray, list[dict]]:
    data = (rng.standard_normal(num_samples) + 1j * rng.standard_normal(num_samples)) * np.sqrt(
        _NOISE_POWER / 2
    )
    signals = wideband_signals(rng, num_samples, sample_rate, num_signals, tone_box_fraction)
    hop_snr: dict[int, float] = {}
    for signal in signals:
        start, n = signal["start"], signal["count"]
        bw, centre = signal["bandwidth"], signal["centre"]
        group = signal.get("hop_group")
        snr_draw = 10 ** (rng.uniform(*snr_db) / 10)
        snr = hop_snr.setdefault(group, snr_draw) if group is not None else snr_draw
        waveform = "psk" if signal["label"] == "hopper" else signal["label"]
        sig = _burst(rng, waveform, n, bw) * _ramp_envelope(n, min(n // 20, 64))
        sig *= np.exp(2j * np.pi * centre * np.arange(n))
        data[start : start + n] += np.sqrt(snr * _NOISE_POWER * bw) * sig
    annotations = jitter_annotations(rng, signals, annotation_jitter, num_samples)
    return data.astype(np.complex64), annotations


def synth_rf(
    out: Path,
    num_recordings: int = 6,
    duration_s: float = 1.0,
    sample_rate: float = 1e6,
    centre_frequency: float = 2.4e9,
    bursts_per_second: float = 20.0,
    burst_duration_s: tuple[float, float] = (0.01, 0.08),
    snr_db: tuple[float, float] = (6.0, 24.0),
    tone_box_fraction: float = 0.02,
    seed: int = 0,
    overwrite: bool = False,
    scene: Literal["bursts", "wideband"] = "bursts",
    signals_per_recording: int = 24,
    annotation_jitter: float = 0.05,
) -> Path:
    """Write synthetic annotated SigMF recordings (``cf32_le``) for training and tests.

    With the defaults every 0.2 s chunk holds about four bursts; at a 256-pixel demo image
    (``make_spectrograms(..., nfft=512, hop=256, image_size=256)``) boxes are 13-100 pixels wide
    and at least 5 pixels tall. Output is deterministic for a seed and appears atomically.

    Args:
        out: Folder to create; it receives ``synth_NNN.sigmf-meta``/``.sigmf-data`` pairs.
        num_recordings: Number of recordings.
        duration_s: Length of each recording in seconds.
        sample_rate: Complex sample rate in samples per second.
        centre_frequency: ``core:frequency`` of the capture in Hz.
        bursts_per_second: Target burst density (fewer when they cannot be placed without
            overlapping).
        burst_duration_s: Range of burst durations in seconds.
        snr_db: Range of in-band SNR in dB.
        tone_box_fraction: Height of a tone's box as a fraction of the sample rate.
        seed: Random seed.
        overwrite: Replace ``out`` if it already exists.
        scene: ``bursts``: separate bursts of the four classes (the settings above);
            ``wideband``: ``signals_per_recording`` overlapping signals of five classes (a
            ``hopper`` class added) lasting from 3 ms to the whole recording, bandwidths over two
            decades, with annotation jitter (:mod:`neo.rf.wideband`).
        signals_per_recording: signals drawn per wideband recording (a hopper counts once).
        annotation_jitter: wideband only: each annotated edge moves by up to this fraction of
            its box's extent.

    Returns:
        The output folder.
    """
    out = Path(out)
    if num_recordings < 1 or duration_s <= 0 or sample_rate <= 0 or signals_per_recording < 1:
        raise ValueError(
            "num_recordings, duration_s, sample_rate and signals_per_recording must be positive"
        )
    if scene not in ("bursts", "wideband"):
        raise ValueError(f"scene must be 'bursts' or 'wideband', got {scene!r}")
    if out.exists() and not overwrite:
        raise ValueError(f"{out}: already exists (add `--overwrite true` to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    num_samples = round(duration_s * sample_rate)
    streams = np.random.SeedSequence(seed).spawn(num_recordings)
    staging = staging_folder(out.parent, f".{out.name}.")
    try:
        for index, stream in enumerate(streams):
            rng = np.random.default_rng(stream)
            if scene == "wideband":
                data, bursts = _wideband_recording(
                    rng,
                    num_samples,
                    sample_rate,
                    signals_per_recording,
                    snr_db,
                    tone_box_fraction,
                    annotation_jitter,
                )
            else:
                data, bursts = _recording(
                    rng,
                    num_samples,
                    sample_rate,
                    bursts_per_second,
                    burst_duration_s,
                    snr_db,
                    tone_box_fraction,
                )
            _write(staging / f"synth_{index:03d}", data, bursts, sample_rate, centre_frequency)
        if out.exists():
            shutil.rmtree(out)
        staging.chmod(0o755)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _write(
    base: Path, data: np.ndarray, bursts: list[dict], sample_rate: float, centre_frequency: float
) -> None:
    data_path = base.with_name(base.name + ".sigmf-data")
    data.astype("<c8").tofile(data_path)
    meta = sigmf.SigMFFile(
        data_file=data_path,
        global_info={
            "core:datatype": "cf32_le",
            "core:sample_rate": sample_rate,
            "core:description": "neo synthetic RF bursts",
        },
    )
    meta.add_capture(0, metadata={"core:frequency": centre_frequency})
    for burst in sorted(bursts, key=lambda b: b["start"]):
        meta.add_annotation(
            burst["start"],
            burst["count"],
            metadata={
                "core:label": burst["label"],
                "core:freq_lower_edge": centre_frequency + burst["lo"] * sample_rate,
                "core:freq_upper_edge": centre_frequency + burst["hi"] * sample_rate,
            },
        )
    meta.tofile(base.with_name(base.name + ".sigmf-meta"))
