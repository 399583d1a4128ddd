from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from jsonargparse import ArgumentParser

from neo.commands import remix
from neo.data.problems import DatasetError
from neo.remix.files import load_plans, load_profiles

VIEW = (640, 384)
# importing neo.cli loads Lightning (slow): only its source is read to decide whether to skip
CLI_SOURCE = Path(importlib.util.find_spec("neo.cli").origin).read_text(encoding="utf-8")
REMIX_REGISTERED = '"remix": "neo.commands.remix"' in CLI_SOURCE
ACC = [0.0, 0.0, 0.05, 0.2, 0.5, 0.6, 0.7, 0.75, 0.8, 0.8, 0.7, 0.6]


def write_inputs(folder: Path) -> tuple[Path, Path]:
    profiles = {
        "fast": {"latency": 0.004, "acc_vector": ACC, "input_size": [320, 192]},
        "slow": {
            "latency": 0.012,
            "acc_vector": ACC,
            "input_size": [640, 384],
            "latency_per_batch": {"1": 0.012, "2": 0.02},
        },
    }
    images = [
        {"id": i, "file_name": f"{i}.jpg", "width": VIEW[0], "height": VIEW[1]} for i in (1, 2)
    ]
    annotations = [
        {"id": k, "image_id": 1 + k % 2, "bbox": [20 + 37 * k % 600, 30 + 23 * k % 340, 24, 30]}
        for k in range(40)
    ]
    (folder / "profiles.json").write_text(json.dumps(profiles))
    (folder / "oracle.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    return folder / "profiles.json", folder / "oracle.json"


def parser() -> ArgumentParser:
    root = ArgumentParser(prog="neo remix")
    remix.add_verbs(root)
    return root


def test_remix_plan_function_writes_plans(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    profiles, history = write_inputs(tmp_path)
    out = tmp_path / "plans" / "plans.json"
    plans = remix.remix_plan(profiles, history, VIEW, budget=0.03, out=out, max_plans=3)
    assert 1 <= len(plans) <= 3
    loaded = load_plans(out, profiles=load_profiles(profiles), view=VIEW)
    assert loaded == plans
    printed = capsys.readouterr().out
    assert "est AP" in printed and "planned in" in printed and str(out) in printed


def test_run_from_parsed_options(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    profiles, history = write_inputs(tmp_path)
    out = tmp_path / "plans.json"
    argv = ["plan", f"--profiles={profiles}", f"--history={history}", "--view=[640,384]"]
    config = parser().parse_args([*argv, "--budget=0.02", f"--out={out}", "--max_plans=2"])
    assert remix.run(config) == 0
    written = json.loads(out.read_text())
    assert 1 <= len(written) <= 2
    assert all(p["est_lat"] <= 0.02 for p in written)
    assert "remix" in remix.description() and "plan" in remix.description()


def test_bad_history_size_is_one_line(tmp_path: Path) -> None:
    profiles, history = write_inputs(tmp_path)
    with pytest.raises(DatasetError, match=r"oracle\.json: image 1 is 640x384, not the 1920x1080"):
        remix.remix_plan(profiles, history, (1920, 1080), budget=0.03, out=tmp_path / "p.json")
    assert not (tmp_path / "p.json").exists()


@pytest.mark.skipif(not REMIX_REGISTERED, reason="neo remix not in neo.cli.TOOL_VERBS yet")
def test_neo_main_remix_plan(tmp_path: Path) -> None:
    import neo.cli

    assert "remix" in neo.cli.TOOL_VERBS
    profiles, history = write_inputs(tmp_path)
    out = tmp_path / "plans.json"
    argv = ["remix", "plan", "--profiles", str(profiles), "--history", str(history)]
    argv += ["--view", "640", "384", "--budget", "0.03", "--out", str(out)]
    code = neo.cli.main(argv)
    assert code in (0, None)
    assert load_plans(out, view=VIEW)
