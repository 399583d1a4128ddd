"""Wideband synthetic scenes: overlapping signals over wide ranges, jittered annotations."""

from __future__ import annotations

import itertools
import json

import numpy as np

from neo.rf import synth_rf
from neo.rf.recording import Recording
from neo.rf.wideband import WIDEBAND_CLASSES, jitter_annotations, wideband_signals

RATE = 1e6
SAMPLES = 1_000_000


def draw(seed=0, count=60):
    return wideband_signals(np.random.default_rng(seed), SAMPLES, RATE, count, 0.004)


def overlaps(a, b):
    time = a["start"] < b["start"] + b["count"] and b["start"] < a["start"] + a["count"]
    return time and a["lo"] < b["hi"] and b["lo"] < a["hi"]


def test_signals_span_wide_durations_and_bandwidths_and_overlap():
    signals = draw()
    durations = np.array([s["count"] for s in signals if s["label"] != "hopper"]) / RATE
    bandwidths = np.array([s["hi"] - s["lo"] for s in signals if s["label"] in ("psk", "chirp")])
    assert durations.min() < 0.02 and durations.max() > 0.5
    assert bandwidths.max() / bandwidths.min() > 20
    assert {s["label"] for s in signals} == set(WIDEBAND_CLASSES)
    assert any(overlaps(a, b) for i, a in enumerate(signals) for b in signals[i + 1 :])
    for s in signals:
        assert -0.5 <= s["lo"] < s["hi"] <= 0.5
        assert s["start"] >= 0 and s["start"] + s["count"] <= SAMPLES


def test_a_hopper_is_one_box_per_dwell_at_changing_frequencies():
    hops = [s for s in draw() if s["label"] == "hopper"]
    groups = {}
    for hop in hops:
        groups.setdefault(hop["hop_group"], []).append(hop)
    longest = max(groups.values(), key=len)
    assert len(longest) >= 3
    for a, b in itertools.pairwise(longest):
        assert a["start"] + a["count"] == b["start"]  # consecutive dwells
    assert len({round(h["lo"], 4) for h in longest}) == len(longest)


def test_annotation_jitter_is_bounded_and_seeded():
    signals = draw(count=20)
    jittered = jitter_annotations(np.random.default_rng(1), signals, 0.05, SAMPLES)
    again = jitter_annotations(np.random.default_rng(1), signals, 0.05, SAMPLES)
    assert jittered == again and jittered != signals
    for a, b in zip(signals, jittered):
        assert abs(b["start"] - a["start"]) <= 0.05 * a["count"] + 1
        assert abs((b["hi"] - b["lo"]) - (a["hi"] - a["lo"])) <= 0.1 * (a["hi"] - a["lo"]) + 1e-9
    assert jitter_annotations(np.random.default_rng(1), signals, 0.0, SAMPLES) == signals


def test_synth_rf_writes_deterministic_wideband_sigmf(tmp_path):
    kwargs = {"num_recordings": 1, "duration_s": 0.2, "scene": "wideband", "seed": 3}
    first = synth_rf(tmp_path / "a", signals_per_recording=12, **kwargs)
    second = synth_rf(tmp_path / "b", signals_per_recording=12, **kwargs)
    meta_a = (first / "synth_000.sigmf-meta").read_text()
    assert meta_a == (second / "synth_000.sigmf-meta").read_text()
    assert (first / "synth_000.sigmf-data").read_bytes() == (
        second / "synth_000.sigmf-data"
    ).read_bytes()
    annotations = json.loads(meta_a)["annotations"]
    assert len(annotations) >= 12 and {a["core:label"] for a in annotations} <= set(
        WIDEBAND_CLASSES
    )
    recording = Recording(first / "synth_000.sigmf-meta")
    assert recording.num_samples == 200_000
