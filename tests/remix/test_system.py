"""RemixSystem end to end with fake detectors on a tiny synthetic scene: profile, plan, run."""

from __future__ import annotations

import numpy as np
import pytest

from neo.remix.detector import CallableDetector
from neo.remix.files import check_tiling, load_plans, load_profiles
from neo.remix.scenes import split_history, synth_scenes
from neo.remix.system import RemixSystem

VIEW = (480, 270)


def centre_box(images: np.ndarray) -> list:
    """One box in the middle of every input image (a stand-in detector)."""
    height, width = images.shape[1:3]
    box = np.array([[width * 0.4, height * 0.4, width * 0.6, height * 0.6]], np.float32)
    return [(box, np.array([0.9], np.float32), np.array([0])) for _ in images]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    out = synth_scenes(
        tmp_path_factory.mktemp("scene") / "scene",
        num_frames=6,
        width=VIEW[0],
        height=VIEW[1],
        max_objects=30,
    )
    history, test = split_history(out, 3)
    return out, history, test


def system(tmp_path, **options) -> RemixSystem:
    detectors = [
        CallableDetector("small_128", (128, 128), centre_box),
        CallableDetector("large_320", (320, 320), centre_box),
    ]
    return RemixSystem(
        detectors, None, 0.5, tmp_path / "profiles.json", tmp_path / "plans.json", **options
    )


def test_profile_plan_and_run_a_video(scene, tmp_path):
    out, history, test = scene
    remix = system(tmp_path)
    profiles = remix.profile_networks(annotations=test, images_root=out)
    assert (
        set(profiles)
        == set(load_profiles(tmp_path / "profiles.json"))
        == {
            "small_128",
            "large_320",
        }
    )
    assert all(len(p.acc_vector) == 12 and p.latency > 0 for p in profiles.values())
    plans = remix.generate_plans(VIEW, history, max_plans=4)
    assert plans and [p.est_ap for p in plans] == sorted((p.est_ap for p in plans), reverse=True)
    for plan in load_plans(tmp_path / "plans.json", profiles, VIEW):
        check_tiling(plan.blocks, VIEW)
    results = list(remix.run_video(out / "scene.mp4", max_frames=3))
    assert [index for index, _, _ in results] == [0, 1, 2]
    for _, (boxes, scores, labels), seconds in results:
        assert boxes.shape[1] == 4 and len(boxes) == len(scores) == len(labels) >= 1
        assert (boxes[:, 2] <= VIEW[0]).all() and (boxes[:, 3] <= VIEW[1]).all()
        assert seconds > 0


def test_existing_profiles_are_reused(scene, tmp_path):
    out, _, test = scene
    system(tmp_path).profile_networks(annotations=test, images_root=out)
    before = (tmp_path / "profiles.json").stat().st_mtime_ns
    system(tmp_path).profile_networks()  # nothing to measure with: everything is loaded
    assert (tmp_path / "profiles.json").stat().st_mtime_ns == before


def test_oracle_labels_unannotated_history(tmp_path):
    oracle = CallableDetector("oracle", (480, 270), centre_box)
    remix = RemixSystem([oracle], oracle, 0.5, tmp_path / "p.json", tmp_path / "q.json")
    frames = [np.zeros((270, 480, 3), np.uint8)] * 2
    distribution = remix.distribution(VIEW, frames)
    assert len(distribution) == 2 and distribution.num_frames == 2
    with pytest.raises(ValueError, match="480x270"):
        remix.distribution((640, 360), frames)
