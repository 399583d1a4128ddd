"""Wideband scenes for ``neo data synth-rf --scene wideband``: what real recordings look like.

Many signals per recording, overlapping in time and frequency: durations log-uniform from a few
milliseconds to the whole recording, bandwidths log-uniform over two decades, tones, chirps, PSK
and OFDM carriers, and frequency hoppers (a narrowband PSK burst that jumps to a new frequency
every dwell; each dwell is its own box). A box is never narrower than ``tone_box_fraction`` of
the sample rate (the tones' box), as a labeller marks a signal narrower than a pixel; annotated
edges carry seeded jitter, as hand labels do.
"""

from __future__ import annotations

import numpy as np

WIDEBAND_CLASSES = ("tone", "chirp", "psk", "ofdm", "hopper")
_BANDWIDTH = (0.003, 0.3)  # fraction of the sample rate: two decades
_HOP_BANDWIDTH = (0.004, 0.015)
_HOP_DWELL_S = (0.004, 0.02)
_EDGE = 0.47  # signals stay inside +-0.47 fs (the anti-alias edge of the spectrogram)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _jitter(
    rng: np.random.Generator, start: int, count: int, lo: float, hi: float, amount: float, n: int
) -> tuple[int, int, float, float]:
    """Each edge moved by up to ``amount`` of the box's extent, kept inside the recording."""
    shift = rng.uniform(-amount, amount, 4)
    first = int(np.clip(start + shift[0] * count, 0, n - 1))
    last = int(np.clip(start + count + shift[1] * count, first + 1, n))
    width = hi - lo
    low = float(np.clip(lo + shift[2] * width, -0.5, 0.5))
    high = float(np.clip(hi + shift[3] * width, low + 1e-6, 0.5))
    return first, last - first, low, high


def wideband_signals(
    rng: np.random.Generator,
    num_samples: int,
    sample_rate: float,
    num_signals: int,
    tone_box_fraction: float,
) -> list[dict]:
    """Draws the signals of one recording: label, start, sample count, band and box edges.

    Hoppers come out as one entry per dwell, all sharing a ``hop_group``.
    """
    signals = []
    shortest = min(num_samples, max(16, int(0.003 * sample_rate)))
    for group in range(num_signals):
        label = WIDEBAND_CLASSES[rng.integers(len(WIDEBAND_CLASSES))]
        count = int(_log_uniform(rng, shortest, num_samples))
        start = int(rng.integers(0, num_samples - count + 1))
        if label == "hopper":
            bw = rng.uniform(*_HOP_BANDWIDTH)
            at = start
            while at < start + count:
                dwell = min(start + count - at, int(rng.uniform(*_HOP_DWELL_S) * sample_rate))
                if dwell < 16:
                    break
                hop = _signal(rng, label, at, dwell, bw, tone_box_fraction)
                signals.append({**hop, "hop_group": group})
                at += dwell
            continue
        bw = tone_box_fraction if label == "tone" else _log_uniform(rng, *_BANDWIDTH)
        if label == "ofdm":
            bw = max(bw, 16 / 256)  # at least 16 of the 256 subcarriers
        signals.append(_signal(rng, label, start, count, bw, tone_box_fraction))
    return signals


def _signal(
    rng: np.random.Generator, label: str, start: int, count: int, bw: float, min_box: float
) -> dict:
    """One signal: its true ``bandwidth`` and ``centre``, and its box edges ``lo``, ``hi``."""
    box = max(bw, min_box)
    centre = rng.uniform(-_EDGE + box / 2, _EDGE - box / 2)
    return {
        "label": label,
        "start": start,
        "count": count,
        "centre": centre,
        "bandwidth": bw,
        "lo": centre - box / 2,
        "hi": centre + box / 2,
    }


def jitter_annotations(
    rng: np.random.Generator, signals: list[dict], amount: float, num_samples: int
) -> list[dict]:
    """The annotations as a labeller would draw them: every edge off by up to ``amount``."""
    if amount <= 0:
        return signals
    jittered = []
    for signal in signals:
        start, count, lo, hi = _jitter(
            rng, signal["start"], signal["count"], signal["lo"], signal["hi"], amount, num_samples
        )
        jittered.append({**signal, "start": start, "count": count, "lo": lo, "hi": hi})
    return jittered
