from __future__ import annotations

import json
from pathlib import Path

import pytest

from neo.data.problems import DatasetError
from neo.remix.files import (
    Block,
    Plan,
    Profile,
    check_tiling,
    load_plans,
    load_profiles,
    save_plans,
    save_profiles,
    update_profile,
)

ACC = [0.1 * i / 1.2 for i in range(12)]
# exactly the seed's formats, written by hand
SEED_PROFILES = {
    "yolov10n": {"latency": 0.012, "acc_vector": ACC},
    "yolov10m": {
        "latency": 0.045,
        "acc_vector": ACC,
        "input_size": [640, 640],
        "latency_per_batch": {"1": 0.045, "4": 0.12},
    },
}
SEED_PLANS = [
    {
        "plan_id": 0,
        "est_ap": 0.75,
        "est_lat": 0.048,
        "blocks": [
            {
                "x1": 0,
                "y1": 0,
                "x2": 960,
                "y2": 1080,
                "detector_name": "yolov10n",
                "skip_window": 0,
            },
            {
                "x1": 960,
                "y1": 0,
                "x2": 1920,
                "y2": 1080,
                "detector_name": "yolov10m",
                "skip_window": 2,
            },
        ],
    },
    {
        "plan_id": 1,
        "est_ap": 0.5,
        "est_lat": 0.012,
        "blocks": [
            {
                "x1": 0,
                "y1": 0,
                "x2": 1920,
                "y2": 1080,
                "detector_name": "yolov10n",
                "skip_window": 0,
            }
        ],
    },
]


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_profiles_round_trip_seed_format(tmp_path: Path) -> None:
    profiles = load_profiles(write(tmp_path / "profiles.json", SEED_PROFILES))
    assert profiles["yolov10n"].latency == 0.012 and profiles["yolov10n"].input_size is None
    assert profiles["yolov10m"].input_size == (640, 640)
    assert profiles["yolov10m"].latency_per_batch == {1: 0.045, 4: 0.12}
    assert len(profiles["yolov10m"].acc_vector) == 12
    out = tmp_path / "out" / "profiles.json"
    save_profiles(out, profiles)
    written = json.loads(out.read_text())
    assert list(written) == ["yolov10m", "yolov10n"]
    assert written == SEED_PROFILES
    assert load_profiles(out) == profiles


def test_update_profile_adds_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "profiles.json"
    update_profile(path, Profile("b", 0.02, tuple(ACC)))
    update_profile(path, Profile("a", 0.01, tuple(ACC), (320, 320)))
    update_profile(path, Profile("b", 0.03, tuple(ACC)))
    profiles = load_profiles(path)
    assert sorted(profiles) == ["a", "b"]
    assert profiles["b"].latency == 0.03 and profiles["a"].input_size == (320, 320)
    assert not list(tmp_path.glob(".*.tmp"))


def test_batch_latency() -> None:
    measured = Profile("d", 0.01, tuple(ACC), latency_per_batch={1: 0.01, 4: 0.02, 8: 0.03})
    assert measured.batch_latency(0) == 0.0
    assert measured.batch_latency(4) == 0.02
    assert measured.batch_latency(3) == pytest.approx(0.01 + 0.01 * 2 / 3)
    assert measured.batch_latency(6) == pytest.approx(0.025)
    assert measured.batch_latency(12) == pytest.approx(0.04)  # last slope extended
    plain = Profile("p", 0.01, tuple(ACC))
    assert plain.batch_latency(3) == pytest.approx(0.03)
    only_four = Profile("f", 0.01, tuple(ACC), latency_per_batch={4: 0.02})
    assert only_four.batch_latency(2) == pytest.approx(0.01 + 0.01 / 3)  # latency is batch 1


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"latency": 0.01}, "detector 'yolo_s': missing acc_vector"),
        ({"acc_vector": ACC}, "missing latency"),
        ({"latency": -1, "acc_vector": ACC}, "latency must be"),
        ({"latency": float("nan"), "acc_vector": ACC}, "latency must be"),
        ({"latency": 0.01, "acc_vector": ACC[:5]}, "12 numbers, got 5"),
        ({"latency": 0.01, "acc_vector": [*ACC[:11], 1.5]}, "[0, 1]"),
        ({"latency": 0.01, "acc_vector": ACC, "input_size": [640]}, "input_size"),
        ({"latency": 0.01, "acc_vector": ACC, "latency_per_batch": {"x": 1}}, "batch size"),
    ],
)
def test_bad_profiles(tmp_path: Path, entry: dict, message: str) -> None:
    path = write(tmp_path / "profiles.json", {"yolo_s": entry})
    with pytest.raises(DatasetError) as error:
        load_profiles(path)
    text = str(error.value)
    assert "profiles.json" in text and message in text and "\n" not in text


def test_missing_and_not_json(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.json"):
        load_profiles(tmp_path / "nope.json")
    bad = tmp_path / "plans.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetError, match=r"plans\.json: not a JSON file"):
        load_plans(bad)


def test_plans_round_trip_seed_format(tmp_path: Path) -> None:
    path = write(tmp_path / "plans.json", SEED_PLANS)
    profiles = load_profiles(write(tmp_path / "profiles.json", SEED_PROFILES))
    plans = load_plans(path, profiles=profiles, view=(1920, 1080))
    assert [p.plan_id for p in plans] == [0, 1]
    assert plans[0].blocks[1] == Block(960, 0, 1920, 1080, "yolov10m", 2)
    assert plans[0].blocks_per_detector() == {"yolov10m": 1, "yolov10n": 1}
    out = tmp_path / "again.json"
    save_plans(out, list(reversed(plans)))  # written most accurate first
    assert json.loads(out.read_text()) == SEED_PLANS


def test_plan_unknown_detector(tmp_path: Path) -> None:
    profiles = load_profiles(write(tmp_path / "profiles.json", SEED_PROFILES))
    plans = json.loads(json.dumps(SEED_PLANS))
    plans[1]["blocks"][0]["detector_name"] = "ghost"
    with pytest.raises(DatasetError, match=r"plans.json: plan 1 block 0: unknown detector 'ghost'"):
        load_plans(write(tmp_path / "plans.json", plans), profiles=profiles)


def test_plan_missing_field(tmp_path: Path) -> None:
    plans = json.loads(json.dumps(SEED_PLANS))
    del plans[0]["blocks"][0]["x2"]
    with pytest.raises(DatasetError, match="plan 0 block 0: missing x2"):
        load_plans(write(tmp_path / "plans.json", plans))


def test_plan_not_tiling_names_plan_and_problem(tmp_path: Path) -> None:
    plans = json.loads(json.dumps(SEED_PLANS))
    plans[0]["blocks"][1]["x1"] = 900
    path = write(tmp_path / "plans.json", plans)
    load_plans(path)  # no view: not checked
    with pytest.raises(DatasetError, match="plan 0: blocks do not tile the view: blocks 0 and 1"):
        load_plans(path, view=(1920, 1080))
    plans[0]["blocks"][1]["x1"] = 1000
    with pytest.raises(DatasetError, match=r"plan 0: .*43200 px of the 1920x1080 view uncovered"):
        load_plans(write(path, plans), view=(1920, 1080))


def test_check_tiling() -> None:
    quarters = [Block(x, y, x + 50, y + 40, "d") for x in (0, 50) for y in (0, 40)]
    check_tiling(quarters, (100, 80))
    with pytest.raises(ValueError, match="leaves the 100x70 view"):
        check_tiling(quarters, (100, 70))
    overlapping = [quarters[0], quarters[1], Block(40, 0, 100, 80, "d")]
    with pytest.raises(ValueError, match="blocks 0 and 2 overlap"):
        check_tiling(overlapping, (100, 80))
    with pytest.raises(ValueError, match="empty"):
        check_tiling([Block(0, 0, 0, 80, "d")], (100, 80))


def test_save_plans_sorts_and_is_atomic(tmp_path: Path) -> None:
    plans = [
        Plan(1, 0.2, 0.01, [Block(0, 0, 8, 8, "d")]),
        Plan(0, 0.6, 0.02, [Block(0, 0, 8, 8, "d")]),
    ]
    path = tmp_path / "plans.json"
    save_plans(path, plans)
    assert [p["est_ap"] for p in json.loads(path.read_text())] == [0.6, 0.2]
    assert [p.name for p in tmp_path.iterdir()] == ["plans.json"]
