from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from neo.remix.distribution import ObjectDistribution
from neo.remix.files import Block, Profile, check_tiling
from neo.remix.planner import block_accuracy, plan, plan_latency

MEDIUM_AND_LARGE = (0.0, 0.0, 0.0, 0.05, 0.6, 0.7, 0.8, 0.8, 0.8, 0.7, 0.3, 0.2)


def rising(low: float, high: float) -> tuple[float, ...]:
    return tuple(float(v) for v in np.linspace(low, high, 12))


def random_distribution(view: tuple[int, int], count: int, seed: int) -> ObjectDistribution:
    rng = np.random.default_rng(seed)
    sides = rng.lognormal(2.8, 0.9, count)
    x = rng.uniform(0, view[0] - 1, count) - sides / 2
    y = rng.uniform(0, view[1] - 1, count) - sides / 2
    return ObjectDistribution(np.stack([x, y, sides, sides * 1.5], 1), 5, view)


def grids(
    block: tuple[int, int, int, int],
    profiles: dict[str, Profile],
    depth: int,
    max_depth: int,
    min_block: int,
):
    """The splits the planner may make, written independently of the planner."""
    x1, y1, x2, y2 = block
    w, h = x2 - x1, y2 - y1
    seen = []
    for profile in profiles.values():
        iw, ih = profile.input_size
        if depth >= max_depth or (iw >= w and ih >= h):
            continue
        cols, rows = math.ceil(w / iw), math.ceil(h / ih)
        if w // cols < min_block or h // rows < min_block or (cols, rows) in seen:
            continue
        seen.append((cols, rows))
        xs = [round(v) for v in np.linspace(x1, x2, cols + 1)]
        ys = [round(v) for v in np.linspace(y1, y2, rows + 1)]
        yield [(xs[c], ys[r], xs[c + 1], ys[r + 1]) for r in range(rows) for c in range(cols)]


def every_plan(block, profiles, depth, max_depth, min_block):
    """Every partition tree of the block, unpruned: lists of (rectangle, detector)."""
    for name in profiles:
        yield [(block, name)]
    for tiles in grids(block, profiles, depth, max_depth, min_block):
        options = [list(every_plan(t, profiles, depth + 1, max_depth, min_block)) for t in tiles]
        for choice in itertools.product(*options):
            yield [leaf for part in choice for leaf in part]


def brute_force(profiles, distribution, max_depth=2, min_block=64):
    view = (0, 0, *distribution.view)
    results = []
    for leaves in every_plan(view, profiles, 0, max_depth, min_block):
        blocks = [Block(*rect, name) for rect, name in leaves]
        accuracy = sum(block_accuracy(profiles[b.detector_name], distribution, b) for b in blocks)
        results.append((accuracy, plan_latency(blocks, profiles)))
    return results


def two_detectors(batched: bool = False) -> dict[str, Profile]:
    big_batches = {1: 0.010, 4: 0.018} if batched else {}
    small_batches = {1: 0.003, 4: 0.005} if batched else {}
    return {
        "big": Profile("big", 0.010, rising(0.1, 0.9), (256, 256), big_batches),
        "small": Profile("small", 0.003, MEDIUM_AND_LARGE, (128, 128), small_batches),
    }


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_brute_force_with_additive_latency(seed: int) -> None:
    profiles = two_detectors()
    objects = random_distribution((512, 256), 300, seed)
    everything = brute_force(profiles, objects)
    assert len(everything) == 582
    for budget in [0.003, 0.008, 0.015, 0.024, 0.04, 0.1]:
        feasible = [a for a, lat in everything if lat <= budget + 1e-12]
        plans = plan(profiles, objects, budget, latency_bucket=1e-9, max_depth=2, min_block=64)
        assert plans[0].est_ap == pytest.approx(max(feasible), abs=1e-9)
        assert all(p.est_lat <= budget + 1e-12 for p in plans)


def test_batched_latency_plans_are_feasible_and_consistent() -> None:
    profiles = two_detectors(batched=True)
    objects = random_distribution((512, 256), 300, 2)
    everything = brute_force(profiles, objects)
    for budget in [0.01, 0.02, 0.03]:
        best = max(a for a, lat in everything if lat <= budget + 1e-12)
        plans = plan(profiles, objects, budget, latency_bucket=1e-4, max_depth=2, min_block=64)
        for p in plans:
            check_tiling(p.blocks, (512, 256))
            assert p.est_lat == pytest.approx(plan_latency(p.blocks, profiles))
            assert p.est_lat <= budget + 1e-12
            accuracy = sum(block_accuracy(profiles[b.detector_name], objects, b) for b in p.blocks)
            assert p.est_ap == pytest.approx(accuracy)
        # the pruning is a heuristic once latency is batched: close to the optimum, never above
        assert best - 0.02 <= plans[0].est_ap <= best + 1e-9


def squares(view: tuple[int, int], side: float, count: int) -> ObjectDistribution:
    rng = np.random.default_rng(3)
    centres = rng.uniform([side, side], [view[0] - side, view[1] - side], (count, 2))
    boxes = np.c_[centres - side / 2, np.full((count, 2), side)]
    return ObjectDistribution(boxes, 1, view)


def one_detector() -> dict[str, Profile]:
    return {"det": Profile("det", 0.01, MEDIUM_AND_LARGE, (256, 256))}


def test_rescaling_makes_tiles_win_on_small_objects() -> None:
    # 40 px objects (medium) shrink to 10 px (small) when 1024 px are resized to 256
    objects = squares((1024, 1024), 40, 200)
    plans = plan(one_detector(), objects, budget=1.0, max_depth=1)
    assert len(plans[0].blocks) == 16
    assert plans[0].est_ap == pytest.approx(0.6)
    whole = [p for p in plans if len(p.blocks) == 1]
    assert whole and whole[0].est_ap == pytest.approx(0.0)


def test_whole_view_wins_on_large_objects() -> None:
    # 400 px objects stay large-1 (100 px) on the whole view; in 256 px tiles they are large-3
    objects = squares((1024, 1024), 400, 50)
    plans = plan(one_detector(), objects, budget=1.0, max_depth=1)
    assert len(plans) == 1 and len(plans[0].blocks) == 1
    assert plans[0].blocks[0] == Block(0, 0, 1024, 1024, "det")
    assert plans[0].est_ap == pytest.approx(0.8)


def test_batch_latency_counts_once_per_batch() -> None:
    profile = Profile("det", 0.01, MEDIUM_AND_LARGE, (128, 128), {1: 0.01, 4: 0.02})
    objects = squares((384, 128), 40, 30)
    plans = plan({"det": profile}, objects, budget=0.1, max_depth=1, min_block=32)
    assert len(plans[0].blocks) == 3
    assert plans[0].est_lat == pytest.approx(profile.batch_latency(3))
    assert plans[0].est_lat < 0.03
    # a budget between one batch of three and three batches of one still allows the split
    assert (
        len(plan({"det": profile}, objects, budget=0.018, max_depth=1, min_block=32)[0].blocks) == 3
    )


def test_plans_tile_sorted_deterministic() -> None:
    profiles = {
        f"d{s}": Profile(f"d{s}", 0.002 * (s / 128) ** 2, rising(0.05 * i, 0.6 + 0.1 * i), (s, s))
        for i, s in enumerate([128, 192, 320])
    }
    objects = random_distribution((800, 448), 400, 4)
    first = plan(profiles, objects, budget=0.05, max_plans=5)
    again = plan(dict(reversed(profiles.items())), objects, budget=0.05, max_plans=5)
    assert first == again
    assert 1 <= len(first) <= 5
    assert [p.plan_id for p in first] == list(range(len(first)))
    assert [p.est_ap for p in first] == sorted((p.est_ap for p in first), reverse=True)
    for p in first:
        check_tiling(p.blocks, (800, 448))
        assert all(b.skip_window == 0 for b in p.blocks)
        assert 0.0 <= p.est_ap <= 1.0


def test_errors() -> None:
    objects = random_distribution((512, 256), 10, 0)
    with pytest.raises(ValueError, match=r"fastest plan \(the whole view on small\) takes 3.00 ms"):
        plan(two_detectors(), objects, budget=0.001)
    no_size = {"d": Profile("d", 0.01, MEDIUM_AND_LARGE)}
    with pytest.raises(ValueError, match="input_size"):
        plan(no_size, objects, budget=1.0)
    with pytest.warns(UserWarning, match="1 detectors without input_size"):
        plans = plan({**two_detectors(), **no_size}, objects, budget=1.0)
    assert all(b.detector_name != "d" for p in plans for b in p.blocks)


def test_objects_larger_than_a_tiles_padded_crop_count_as_missed():
    # four 150 px objects centred in a 400x200 view: tiles of 100x100 cut every one of them
    boxes = np.array([[x - 75, 0, 150, 150] for x in (90, 170, 230, 310)], float)
    objects = ObjectDistribution(boxes, 1, (400, 200))
    flat = (0.9,) * 12  # the same accuracy at every size: only cutting can tell the plans apart
    profiles = {
        "small": Profile("small", 0.01, flat, (100, 100)),
        "big": Profile("big", 0.05, flat, (400, 200)),
    }
    whole = Block(0, 0, 400, 200, "big")
    tile = Block(0, 0, 100, 100, "small")
    assert objects.whole_in(whole).sum() == 4
    assert block_accuracy(profiles["big"], objects, whole) == pytest.approx(0.9)
    assert block_accuracy(profiles["small"], objects, tile, padding=None) > 0
    assert block_accuracy(profiles["small"], objects, tile) == 0.0  # cut: a 120 px crop
    best = plan(profiles, objects, budget=1.0)[0]
    assert len(best.blocks) == 1 and best.est_ap == pytest.approx(0.9)
    tiles = [Block(x, y, x + 100, y + 100, "small") for y in (0, 100) for x in range(0, 400, 100)]
    cut = sum(block_accuracy(profiles["small"], objects, b) for b in tiles)
    uncut = sum(block_accuracy(profiles["small"], objects, b, padding=None) for b in tiles)
    assert cut == 0.0 and uncut == pytest.approx(0.9)  # without cutting, tiles look as good
