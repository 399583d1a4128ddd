"""``neo data synth-scenes`` → ``neo remix split|profile|plan|run`` with a tiny ONNX detector."""

from __future__ import annotations

import csv
import json

from neo.cli import main
from neo.remix.files import load_plans, load_profiles
from tests.deploy.tiny_onnx import tiny_onnx


def test_profile_plan_run_from_the_command_line(tmp_path, capsys):
    scene = tmp_path / "scene"
    assert main(["data", "synth-scenes", "--out", str(scene), "--num_frames", "6",
                 "--width", "256", "--height", "128", "--max_objects", "20"]) == 0  # fmt: skip
    assert main(["remix", "split", "--out", str(scene), "--history_frames", "3"]) == 0
    model = tiny_onnx(tmp_path / "tiny.onnx")
    profiles, plans, out = tmp_path / "profiles.json", tmp_path / "plans.json", tmp_path / "run"
    code = main(["remix", "profile", "--models", str(model),
                 "--annotations", str(scene / "history.json"), "--images", str(scene),
                 "--runs", "3", "--batch_sizes", "[1, 2]", "--out", str(profiles)])  # fmt: skip
    assert code == 0
    (profile,) = load_profiles(profiles).values()
    assert profile.name == "tiny_64x32" and profile.input_size == (64, 32)
    assert set(profile.latency_per_batch) == {1, 2}
    assert main(["remix", "plan", "--profiles", str(profiles),
                 "--history", str(scene / "history.json"), "--view", "256", "128",
                 "--budget", "10", "--max_plans", "3", "--out", str(plans)]) == 0  # fmt: skip
    assert load_plans(plans, load_profiles(profiles), (256, 128))
    assert main(["remix", "run", "--models", str(model), "--plans", str(plans),
                 "--profiles", str(profiles), "--annotations", str(scene / "test.json"),
                 "--out", str(out), "--render", "true"]) == 0  # fmt: skip
    with open(out / "frames.csv") as f:
        frames = list(csv.DictReader(f))
    assert len(frames) == 3 and all(float(r["latency_ms"]) > 0 for r in frames)
    detections = json.loads((out / "detections.json").read_text())
    assert {d["image_id"] for d in detections} <= {int(r["image_id"]) for r in frames}
    assert (out / "render.mp4").stat().st_size > 0
    assert "AP" in capsys.readouterr().out


def test_run_names_a_missing_model(tmp_path, capsys):
    profiles = tmp_path / "profiles.json"
    profiles.write_text(json.dumps({"other_64x32": {"latency": 0.01, "acc_vector": [0.5] * 12,
                                                    "input_size": [64, 32]}}))  # fmt: skip
    plans = tmp_path / "plans.json"
    plans.write_text(json.dumps([{"plan_id": 0, "est_ap": 0.5, "est_lat": 0.01, "blocks": [
        {"x1": 0, "y1": 0, "x2": 64, "y2": 32, "detector_name": "other_64x32",
         "skip_window": 0}]}]))  # fmt: skip
    model = tiny_onnx(tmp_path / "tiny.onnx")
    code = main(["remix", "run", "--models", str(model), "--plans", str(plans),
                 "--profiles", str(profiles), "--video", str(tmp_path / "absent.mp4"),
                 "--out", str(tmp_path / "out")])  # fmt: skip
    assert code == 1
    assert "other_64x32" in capsys.readouterr().err
