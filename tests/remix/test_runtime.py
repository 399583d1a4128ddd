from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from neo.remix.detector import CallableDetector
from neo.remix.files import Block, Plan
from neo.remix.runtime import (
    PlanController,
    RemixRuntime,
    SkipWindow,
    merge_detections,
    padded,
    to_frame,
)

FIXED_BOX = np.array([[10.0, 20.0, 30.0, 40.0]], np.float32)


class Recorder:
    """A fake detector function that records the batches it gets."""

    def __init__(self, detect) -> None:
        self.detect = detect
        self.batches: list[np.ndarray] = []

    def __call__(self, images: np.ndarray):
        self.batches.append(images.copy())
        return [self.detect(image) for image in images]


def fixed_box(label: int):
    def detect(image: np.ndarray):
        return FIXED_BOX.copy(), np.array([0.9], np.float32), np.array([label], np.int64)

    return detect


def bright_regions(min_side: int = 2):
    """Detects each bright connected region at least ``min_side`` pixels wide and high."""

    def detect(image: np.ndarray):
        mask = (image[..., 0] > 127).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
        boxes = [
            [x, y, x + w, y + h]
            for x, y, w, h, _ in stats[1:count]
            if w >= min_side and h >= min_side
        ]
        boxes = np.array(boxes, np.float32).reshape(-1, 4)
        return boxes, np.full(len(boxes), 0.8, np.float32), np.zeros(len(boxes), np.int64)

    return detect


def scene(view: tuple[int, int], objects: list[tuple[int, int, int, int]]) -> np.ndarray:
    frame = np.zeros((view[1], view[0], 3), np.uint8)
    for x1, y1, x2, y2 in objects:
        frame[y1:y2, x1:x2] = 255
    return frame


def two_block_plan(name_a: str = "a", name_b: str = "b", plan_id: int = 0) -> Plan:
    blocks = [Block(0, 0, 100, 100, name_a), Block(100, 0, 200, 100, name_b)]
    return Plan(plan_id, 0.5, 0.01, blocks)


# --- SkipWindow -------------------------------------------------------------------------------


def test_skip_window_grows_additively_while_empty_and_never_above_max():
    window = SkipWindow(max_window=3)
    runs = []
    for _ in range(16):
        run = window.should_run()
        runs.append(run)
        if run:
            window.update(found_objects=False)
    # windows 1, 2, 3, 3: run, skip 1, run, skip 2, run, skip 3, run, skip 3, ...
    expected = [True, False, True, False, False, True, False, False, False, True]
    assert runs[:10] == expected
    assert window.window == 3
    assert runs[10:16] == [False, False, False, True, False, False]


def test_skip_window_cut_multiplicatively_when_objects_appear():
    window = SkipWindow(initial=8, max_window=8)
    assert window.should_run()  # the first frame always runs
    window.update(found_objects=True)
    assert window.window == 4 and window.countdown == 4
    assert [window.should_run() for _ in range(5)] == [False] * 4 + [True]
    window.update(found_objects=True)
    assert window.window == 2
    window.update(found_objects=True)
    window.update(found_objects=True)
    assert window.window == 0


def test_block_with_objects_runs_every_frame():
    window = SkipWindow(initial=1)
    runs = []
    for _ in range(10):
        run = window.should_run()
        runs.append(run)
        if run:
            window.update(found_objects=True)
    assert all(runs)
    assert window.window == 0


def test_skip_window_rejects_bad_settings():
    with pytest.raises(ValueError, match="decrease"):
        SkipWindow(decrease=1.5)


# --- PlanController ---------------------------------------------------------------------------


def ladder() -> list[Plan]:
    block = [Block(0, 0, 10, 10, "d")]
    return [
        Plan(0, 0.9, 0.10, block),
        Plan(1, 0.7, 0.05, block),
        Plan(2, 0.5, 0.02, block),
    ]


def test_controller_starts_at_most_accurate_plan_under_budget():
    assert PlanController(ladder(), budget=0.06).current.plan_id == 1
    assert PlanController(ladder(), budget=0.5).current.plan_id == 0
    # none fits: the fastest
    assert PlanController(ladder(), budget=0.001).current.plan_id == 2


def test_controller_moves_down_after_patience_frames_and_stays_in_bounds():
    controller = PlanController(ladder(), budget=0.06, tolerance=0.1, patience=3)
    controller.observe(0.1)
    controller.observe(0.1)
    assert controller.current.plan_id == 1
    controller.observe(0.1)
    assert controller.current.plan_id == 2
    assert controller.switches == 1
    # hysteresis: the counter restarts after a switch; the fastest plan is the floor
    for _ in range(10):
        controller.observe(0.2)
    assert controller.current.plan_id == 2
    assert controller.switches == 1


def test_controller_stays_inside_tolerance_band():
    controller = PlanController(ladder(), budget=0.06, tolerance=0.1, patience=2)
    for latency in [0.063, 0.058, 0.065, 0.055] * 3:
        controller.observe(latency)
    assert controller.current.plan_id == 1
    assert controller.switches == 0


def test_controller_median_ignores_one_slow_frame():
    controller = PlanController(ladder(), budget=0.06, patience=1, history=5)
    controller.observe(0.05)
    controller.observe(0.05)
    controller.observe(0.5)  # median of (0.05, 0.05, 0.5) is 0.05
    assert controller.current.plan_id == 1


def test_controller_moves_up_when_scaled_estimate_fits():
    controller = PlanController(ladder(), budget=0.06, tolerance=0.1, patience=2)
    # plan 1 (est 0.05) measures 0.04: plan 0 would take 0.10 * 0.8 = 0.08 > budget, stay
    for _ in range(5):
        controller.observe(0.04)
    assert controller.current.plan_id == 1
    # measuring 0.025 (ratio 0.5): plan 0 would take 0.05, which fits
    controller.observe(0.025)
    controller.observe(0.025)
    controller.observe(0.025)
    assert controller.current.plan_id == 0
    assert controller.median_latency is None  # the history restarts with the new plan
    for _ in range(10):  # the most accurate plan is the ceiling
        controller.observe(0.001)
    assert controller.current.plan_id == 0


def test_controller_rejects_empty_plans():
    with pytest.raises(ValueError, match="no plans"):
        PlanController([], budget=0.1)


# --- padded, to_frame, merge ------------------------------------------------------------------


def test_padded_grows_by_fraction_and_clips_to_view():
    block = Block(100, 50, 200, 100, "d")
    assert padded(block, (400, 300), 0.1) == (90, 45, 210, 105)
    assert padded(block, (205, 300), 0.5) == (50, 25, 205, 125)
    assert padded(Block(0, 0, 10, 10, "d"), (10, 10), 0.3) == (0, 0, 10, 10)
    assert padded(block, (400, 300), pixels=7) == (93, 43, 207, 107)
    assert padded(block, (400, 300), 0.0) == (100, 50, 200, 100)
    with pytest.raises(ValueError):
        padded(block, (400, 300), -0.1)


def test_to_frame_scales_offsets_clips_and_drops_empty_boxes():
    boxes = np.array([[10, 10, 20, 20], [0, 0, 400, 10], [390, 0, 400, 10]], np.float32)
    detections = (boxes, np.array([0.9, 0.8, 0.7], np.float32), np.array([1, 2, 3]))
    mapped, scores, labels = to_frame(detections, 0.5, (100, 10), (250, 100))
    np.testing.assert_allclose(mapped, [[120, 30, 140, 50], [100, 10, 250, 30]])
    assert scores.tolist() == pytest.approx([0.9, 0.8])
    assert labels.tolist() == [1, 2]


def test_merge_is_class_aware():
    box = np.array([[0, 0, 10, 10]], np.float32)
    parts = [
        (box, np.array([0.9], np.float32), np.array([0])),
        (box + 0.5, np.array([0.8], np.float32), np.array([0])),
        (box, np.array([0.7], np.float32), np.array([1])),
    ]
    boxes, scores, labels = merge_detections(parts, 0.5)
    assert scores.tolist() == pytest.approx([0.9, 0.7])
    assert labels.tolist() == [0, 1]
    np.testing.assert_allclose(boxes, [[0, 0, 10, 10], [0, 0, 10, 10]])
    assert len(merge_detections([], 0.5)[0]) == 0


# --- RemixRuntime -----------------------------------------------------------------------------


@pytest.mark.parametrize("padding", [0.0, 0.1])
def test_boxes_mapped_back_to_frame_pixels(padding):
    detectors = {
        "a": CallableDetector("a", (100, 100), Recorder(fixed_box(0))),
        "b": CallableDetector("b", (50, 50), Recorder(fixed_box(1))),
    }
    runtime = RemixRuntime(detectors, [two_block_plan()], budget=1.0, padding=padding)
    (boxes, scores, labels), latency = runtime.run_frame(np.zeros((100, 200, 3), np.uint8))
    expected = {}
    for label, block, input_size in [(0, (0, 0, 100, 100), 100), (1, (100, 0, 200, 100), 50)]:
        x1, y1, x2, y2 = padded(Block(*block, "x"), (200, 100), padding)
        scale = min(input_size / (x2 - x1), input_size / (y2 - y1))
        expected[label] = FIXED_BOX[0] / scale + np.array([x1, y1, x1, y1])
    assert sorted(labels.tolist()) == [0, 1]
    assert scores.tolist() == pytest.approx([0.9, 0.9])
    for box, label in zip(boxes, labels):
        np.testing.assert_allclose(box, expected[int(label)], rtol=1e-5)
    if padding == 0.0:
        np.testing.assert_allclose(expected[0], [10, 20, 30, 40])
        np.testing.assert_allclose(expected[1], [120, 40, 160, 80])
    assert latency > 0
    log = runtime.last_frame_log()
    assert log["plan_id"] == 0 and log["blocks_run"] == 2 and log["blocks_skipped"] == 0
    assert log["latency"] == latency


def test_one_call_per_detector_with_whole_batch():
    recorder_a, recorder_b = Recorder(fixed_box(0)), Recorder(fixed_box(1))
    detectors = {
        "a": CallableDetector("a", (32, 24), recorder_a),
        "b": CallableDetector("b", (16, 16), recorder_b),
    }
    blocks = [
        Block(0, 0, 50, 50, "a"),
        Block(50, 0, 100, 50, "b"),
        Block(0, 50, 50, 100, "a"),
        Block(50, 50, 100, 100, "a"),
    ]
    runtime = RemixRuntime(detectors, [Plan(0, 0.5, 0.01, blocks)], budget=1.0)
    runtime.run_frame(np.zeros((100, 100, 3), np.uint8))
    assert [b.shape for b in recorder_a.batches] == [(3, 24, 32, 3)]
    assert [b.shape for b in recorder_b.batches] == [(1, 16, 16, 3)]
    assert recorder_a.batches[0].dtype == np.uint8


def test_duplicates_across_padded_block_edge_merged_by_nms():
    view = (200, 100)
    frame = scene(view, [(90, 40, 110, 60)])  # straddles the edge at x = 100
    detectors = {"d": CallableDetector("d", (120, 100), Recorder(bright_regions()))}
    plan = two_block_plan("d", "d")
    # padded crops are (0..120) and (80..200), each 120 px wide: scale 1, both see the object
    runtime = RemixRuntime(detectors, [plan], budget=1.0, padding=0.2)
    (boxes, _, _), _ = runtime.run_frame(frame)
    np.testing.assert_allclose(boxes, [[90, 40, 110, 60]])
    assert len(detectors["d"].function.batches[0]) == 2
    # both crops see it whole; without ownership and NMS it would be reported twice
    unmerged = RemixRuntime(
        detectors, [plan], budget=1.0, padding=0.2, nms_iou=1.0, owned_only=False
    )
    (boxes, _, _), _ = unmerged.run_frame(frame)
    assert len(boxes) == 2
    # only the block holding its centre (x = 100: the right one) reports it
    owned = RemixRuntime(detectors, [plan], budget=1.0, padding=0.2, nms_iou=1.0)
    (boxes, _, _), _ = owned.run_frame(frame)
    np.testing.assert_allclose(boxes, [[90, 40, 110, 60]])


def test_objects_cut_by_a_crop_edge_are_left_to_the_block_that_owns_them():
    view = (200, 100)
    frame = scene(view, [(108, 40, 138, 60)])  # inside the right block, 8 px from its edge
    detectors = {"d": CallableDetector("d", (120, 100), Recorder(bright_regions()))}
    # the left crop (0..120) sees only x 108..120: a partial box centred in its padding
    cut = RemixRuntime(detectors, [two_block_plan("d", "d")], 1.0, padding=0.2, owned_only=False)
    (boxes, _, _), _ = cut.run_frame(frame)
    assert len(boxes) == 2  # IoU of the partial and the whole box is 0.4: NMS keeps both
    owned = RemixRuntime(detectors, [two_block_plan("d", "d")], 1.0, padding=0.2)
    (boxes, _, _), _ = owned.run_frame(frame)
    np.testing.assert_allclose(boxes, [[108, 40, 138, 60]])


def test_skipped_blocks_are_not_run():
    view = (200, 100)
    frame = scene(view, [(30, 30, 50, 50)])  # only in the left block
    recorder = Recorder(bright_regions())
    detectors = {"d": CallableDetector("d", (100, 100), recorder)}
    runtime = RemixRuntime(detectors, [two_block_plan("d", "d")], budget=1.0, padding=0.0)
    logs = []
    for _ in range(6):
        (boxes, _, _), _ = runtime.run_frame(frame)
        logs.append(runtime.last_frame_log())
        np.testing.assert_allclose(boxes, [[30, 30, 50, 50]])  # the left block runs every frame
    # the empty right block: run, skip 1, run, skip 2, run, ...
    assert [len(b) for b in recorder.batches] == [2, 1, 2, 1, 1, 2]
    assert [log["blocks_skipped"] for log in logs] == [0, 1, 0, 1, 1, 0]
    assert [log["blocks_run"] for log in logs] == [2, 1, 2, 1, 1, 2]
    # a batch of one is the left block's crop (it holds the object)
    assert recorder.batches[1][0].max() == 255

    always = Recorder(bright_regions())
    runtime = RemixRuntime(
        {"d": CallableDetector("d", (100, 100), always)},
        [two_block_plan("d", "d")],
        budget=1.0,
        use_skip_windows=False,
    )
    for _ in range(4):
        runtime.run_frame(frame)
    assert [len(b) for b in always.batches] == [2, 2, 2, 2]


def test_all_blocks_skipped_gives_no_detections():
    recorder = Recorder(bright_regions())
    runtime = RemixRuntime(
        {"d": CallableDetector("d", (100, 100), recorder)}, [two_block_plan("d", "d")], 1.0
    )
    frame = scene((200, 100), [])
    runtime.run_frame(frame)
    (boxes, scores, labels), _ = runtime.run_frame(frame)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and labels.dtype == np.int64
    assert runtime.last_frame_log()["blocks_run"] == 0
    assert len(recorder.batches) == 1


def test_controller_switches_down_under_slow_detector_and_back_up():
    slow_seconds = 0.15

    def slow(images):
        time.sleep(slow_seconds)
        return [fixed_box(0)(image) for image in images]

    detectors = {
        "big": CallableDetector("big", (32, 32), slow),
        "small": CallableDetector("small", (16, 16), Recorder(fixed_box(0))),
    }
    accurate = Plan(0, 0.9, 0.02, [Block(0, 0, 64, 32, "big")])
    fast = Plan(1, 0.5, 0.01, [Block(0, 0, 64, 32, "small")])
    plans = [accurate, fast]
    controller = PlanController(plans, budget=0.05, patience=2)
    runtime = RemixRuntime(detectors, plans, budget=0.05, controller=controller)
    frame = np.zeros((32, 64, 3), np.uint8)
    used = []
    for _ in range(5):
        runtime.run_frame(frame)
        used.append(runtime.last_frame_log()["plan_id"])
    # two slow frames on plan 0, two fast ones on plan 1 (measured far below its estimate), back
    assert used == [0, 0, 1, 1, 0]
    assert controller.switches == 2


def test_skip_windows_kept_when_plan_switches_back():
    recorder = Recorder(bright_regions())
    detectors = {"d": CallableDetector("d", (100, 100), recorder)}
    accurate = Plan(0, 0.9, 0.02, [Block(0, 0, 200, 100, "d")])
    fast = two_block_plan("d", "d", plan_id=1)
    controller = PlanController([accurate, fast], budget=0.05, patience=1)
    runtime = RemixRuntime(detectors, [accurate, fast], budget=0.05, controller=controller)
    frame = scene((200, 100), [])
    runtime.run_frame(frame)  # plan 0 found nothing: its window is now 1
    controller.observe(10.0)  # force plan 1
    assert controller.current.plan_id == 1
    controller.observe(0.0001)  # and back (plan 0 scaled to ~0 fits)
    assert controller.current.plan_id == 0
    calls = len(recorder.batches)
    runtime.run_frame(frame)
    assert runtime.last_frame_log()["blocks_skipped"] == 1  # the window survived the switch
    assert len(recorder.batches) == calls


def test_wrong_frame_size_names_both_sizes():
    detectors = {"d": CallableDetector("d", (100, 100), Recorder(fixed_box(0)))}
    runtime = RemixRuntime(detectors, [two_block_plan("d", "d")], budget=1.0)
    with pytest.raises(ValueError, match=r"640x480.*200x100"):
        runtime.run_frame(np.zeros((480, 640, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        runtime.run_frame(np.zeros((100, 200, 3), np.float32))


def test_runtime_rejects_missing_detector_and_mixed_views():
    detectors = {"a": CallableDetector("a", (100, 100), Recorder(fixed_box(0)))}
    with pytest.raises(ValueError, match="detectors b"):
        RemixRuntime(detectors, [two_block_plan()], budget=1.0)
    small = Plan(1, 0.5, 0.01, [Block(0, 0, 50, 50, "a")])
    big = Plan(0, 0.5, 0.01, [Block(0, 0, 100, 100, "a")])
    with pytest.raises(ValueError, match="different views"):
        RemixRuntime(detectors, [big, small], budget=1.0)
