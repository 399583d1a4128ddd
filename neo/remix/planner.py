"""Remix's offline planner: partition the view into blocks, one detector per block.

For every block the planner either runs one detector on the whole block (resized to the
detector's input) or splits the block into a grid of tiles about a detector's input size and
plans each tile again, recursively (dynamic programming, memoised per rectangle). A plan's
estimated accuracy is the sum over its blocks of (share of the objects in the block x the
detector's accuracy vector . the block's size distribution after rescaling); its latency is one
batch per detector holding all of that detector's blocks. After every step only the
Pareto-optimal candidates are kept: the most accurate one per latency bucket, and none that a
faster-or-equal candidate matches or beats in accuracy.

Batched latency is not additive (a detector's second block is cheaper than its first), so the
pruning is exact only for additive latencies and a fine bucket, as in the paper it is a
heuristic otherwise.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from neo.remix.bins import size_histogram
from neo.remix.distribution import PADDING, ObjectDistribution, Rectangle
from neo.remix.files import Block, Plan, Profile

# accuracies closer than this count as equal when pruning (sums taken in different orders)
_ACCURACY_TOLERANCE = 1e-12


@dataclass(frozen=True)
class _Rect:
    x1: int
    y1: int
    x2: int
    y2: int


# a tree of blocks: a leaf (x1, y1, x2, y2, detector index) or a pair (left tree, right tree)
_Tree = tuple


class _Candidate(NamedTuple):
    accuracy: float
    latency: float
    counts: tuple[int, ...]
    num_blocks: int
    tree: _Tree | None


def input_scale(profile: Profile, block: Rectangle) -> float:
    """How much a block's sides are resized to fit the detector's input, keeping aspect.

    Args:
        profile: the detector (needs ``input_size``).
        block: the rectangle.

    Returns:
        ``min(input_width / block_width, input_height / block_height)``.
    """
    if profile.input_size is None:
        raise ValueError(f"detector {profile.name!r}: no input_size in its profile")
    width, height = profile.input_size
    return min(width / (block.x2 - block.x1), height / (block.y2 - block.y1))


def block_accuracy(
    profile: Profile,
    distribution: ObjectDistribution,
    block: Rectangle,
    padding: float | None = PADDING,
) -> float:
    """A block's contribution to a plan's estimated AP when ``profile``'s detector runs on it.

    Args:
        profile: the detector (needs ``input_size``).
        distribution: the scene's objects.
        block: the rectangle.
        padding: the run-time crop margin; objects larger than the padded crop count as missed
            (``None``: every object of the block counts as seen whole).

    Returns:
        ``share(block) * (acc_vector . histogram(block, scale, padding))``.
    """
    histogram = distribution.histogram(block, input_scale(profile, block), padding)
    return distribution.share(block) * float(np.dot(profile.acc_vector, histogram))


def plan_latency(blocks: list[Block], profiles: dict[str, Profile]) -> float:
    """A plan's estimated latency: one batch per detector holding all of its blocks.

    Args:
        blocks: the plan's blocks.
        profiles: the detectors' profiles by name.

    Returns:
        Seconds per frame.
    """
    counts: dict[str, int] = {}
    for block in blocks:
        counts[block.detector_name] = counts.get(block.detector_name, 0) + 1
    return sum(profiles[name].batch_latency(count) for name, count in counts.items())


def _flatten(tree: _Tree | None, names: list[str], out: list[Block]) -> None:
    stack = [tree]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if len(node) == 5:
            out.append(Block(node[0], node[1], node[2], node[3], names[node[4]]))
        else:
            stack.extend(reversed(node))


def _grid_edges(start: int, stop: int, parts: int) -> list[int]:
    return [int(v) for v in np.rint(np.linspace(start, stop, parts + 1))]


class _Planner:
    """The recursion, its memo and the pruning, for one planning problem."""

    def __init__(
        self,
        detectors: list[Profile],
        distribution: ObjectDistribution,
        budget: float,
        latency_bucket: float,
        min_block: int,
        max_depth: int,
        padding: float | None,
    ) -> None:
        self.detectors = detectors
        self.padding = padding
        self.distribution = distribution
        self.budget = budget
        self.latency_bucket = latency_bucket
        self.min_block = min_block
        self.max_depth = max_depth
        self.total_objects = max(len(distribution), 1)
        self.accuracy_vectors = np.array([d.acc_vector for d in detectors])
        self.memo: dict[tuple[int, int, int, int, int], list[_Candidate]] = {}
        self.batch_latency = lru_cache(maxsize=None)(self._batch_latency)

    def _batch_latency(self, detector: int, count: int) -> float:
        return self.detectors[detector].batch_latency(count)

    def latency(self, counts: tuple[int, ...]) -> float:
        return sum(self.batch_latency(d, c) for d, c in enumerate(counts) if c)

    def prune(self, candidates: list[_Candidate]) -> list[_Candidate]:
        """Drops over-budget candidates, keeps the best per bucket, then the Pareto front."""
        best_per_bucket: dict[int, _Candidate] = {}
        for candidate in candidates:
            if candidate.latency > self.budget:
                continue
            bucket = math.floor(candidate.latency / self.latency_bucket)
            kept = best_per_bucket.get(bucket)
            if (
                kept is None
                or candidate.accuracy > kept.accuracy + _ACCURACY_TOLERANCE
                or (
                    candidate.accuracy >= kept.accuracy - _ACCURACY_TOLERANCE
                    and candidate.num_blocks < kept.num_blocks
                )
            ):
                best_per_bucket[bucket] = candidate
        front: list[_Candidate] = []
        best_accuracy = -math.inf
        for candidate in sorted(
            best_per_bucket.values(), key=lambda c: (c.latency, -c.accuracy, c.num_blocks)
        ):
            if candidate.accuracy > best_accuracy + _ACCURACY_TOLERANCE:
                front.append(candidate)
                best_accuracy = candidate.accuracy
        return front

    def whole_block(self, rect: _Rect) -> list[_Candidate]:
        """One candidate per detector run on the whole block."""
        if self.padding is None:
            mask = self.distribution.objects_in(rect)
        else:
            mask = self.distribution.whole_in(rect, self.padding)
        areas = self.distribution.areas[mask]
        width, height = rect.x2 - rect.x1, rect.y2 - rect.y1
        candidates = []
        for index, detector in enumerate(self.detectors):
            input_width, input_height = detector.input_size  # type: ignore[misc]
            scale = min(input_width / width, input_height / height)
            counts_per_bin = size_histogram(areas * scale**2)
            accuracy = float(self.accuracy_vectors[index] @ counts_per_bin) / self.total_objects
            counts = tuple(int(i == index) for i in range(len(self.detectors)))
            leaf = (rect.x1, rect.y1, rect.x2, rect.y2, index)
            candidates.append(_Candidate(accuracy, self.latency(counts), counts, 1, leaf))
        return candidates

    def grids(self, rect: _Rect, depth: int) -> list[tuple[int, int]]:
        """The distinct ``(columns, rows)`` splits of the block, one per smaller detector."""
        if depth >= self.max_depth:
            return []
        width, height = rect.x2 - rect.x1, rect.y2 - rect.y1
        grids: list[tuple[int, int]] = []
        for detector in self.detectors:
            input_width, input_height = detector.input_size  # type: ignore[misc]
            if input_width >= width and input_height >= height:
                continue
            columns, rows = math.ceil(width / input_width), math.ceil(height / input_height)
            if width // columns < self.min_block or height // rows < self.min_block:
                continue
            if (columns, rows) not in grids:
                grids.append((columns, rows))
        return grids

    def split(self, rect: _Rect, columns: int, rows: int, depth: int) -> list[_Candidate]:
        """The candidates of a grid split: the tiles' candidate sets folded one by one."""
        xs = _grid_edges(rect.x1, rect.x2, columns)
        ys = _grid_edges(rect.y1, rect.y2, rows)
        zero = tuple(0 for _ in self.detectors)
        running = [_Candidate(0.0, 0.0, zero, 0, None)]
        for row in range(rows):
            for column in range(columns):
                tile = _Rect(xs[column], ys[row], xs[column + 1], ys[row + 1])
                tile_candidates = self.candidates(tile, depth + 1)
                combined = []
                for done in running:
                    for more in tile_candidates:
                        counts = tuple(a + b for a, b in zip(done.counts, more.counts))
                        combined.append(
                            _Candidate(
                                done.accuracy + more.accuracy,
                                self.latency(counts),
                                counts,
                                done.num_blocks + more.num_blocks,
                                (done.tree, more.tree) if done.tree is not None else more.tree,
                            )
                        )
                running = self.prune(combined)
                if not running:
                    return []
        return running

    def candidates(self, rect: _Rect, depth: int) -> list[_Candidate]:
        """The Pareto-optimal plans of one block (memoised)."""
        key = (rect.x1, rect.y1, rect.x2, rect.y2, depth)
        cached = self.memo.get(key)
        if cached is not None:
            return cached
        options = self.whole_block(rect)
        for columns, rows in self.grids(rect, depth):
            options.extend(self.split(rect, columns, rows, depth))
        result = self.prune(options)
        self.memo[key] = result
        return result


def plan(
    profiles: dict[str, Profile],
    distribution: ObjectDistribution,
    budget: float,
    max_plans: int = 10,
    latency_bucket: float = 0.001,
    min_block: int = 64,
    max_depth: int = 4,
    padding: float | None = PADDING,
) -> list[Plan]:
    """The most accurate Pareto-optimal partition plans of the view within a latency budget.

    Args:
        profiles: the detectors by name; those without ``input_size`` are left out (warned).
        distribution: the scene's objects (its ``view`` is the area to partition).
        budget: the latency budget in seconds per frame.
        max_plans: how many plans to return at most.
        latency_bucket: seconds per latency bucket of the pruning (one plan kept per bucket).
        min_block: no tile smaller than this many pixels on a side is made.
        max_depth: how many times a block may be split recursively.
        padding: the run-time crop margin per side (:data:`~neo.remix.distribution.PADDING`);
            an object larger than its block's padded crop counts as missed by that block
            (``None``: objects are never cut).

    Returns:
        Plans sorted by ``est_ap`` descending (ties: faster first), ``plan_id`` 0..n-1, every
        ``skip_window`` 0.

    Raises:
        ValueError: no detector has an input size, bad arguments, or no plan fits the budget
            (the message gives the fastest plan's latency).
    """
    if budget <= 0 or not math.isfinite(budget):
        raise ValueError(f"budget must be a positive number of seconds, got {budget}")
    if latency_bucket <= 0:
        raise ValueError(f"latency_bucket must be positive, got {latency_bucket}")
    if max_plans < 1:
        raise ValueError(f"max_plans must be at least 1, got {max_plans}")
    detectors = [profiles[name] for name in sorted(profiles) if profiles[name].input_size]
    missing = sorted(name for name in profiles if profiles[name].input_size is None)
    if not detectors:
        raise ValueError(
            "no detector profile has an input_size; the planner needs each detector's input "
            "[width, height] (add input_size to profiles.json)"
        )
    if missing:
        warnings.warn(
            f"{len(missing)} detectors without input_size left out of planning: "
            f"{', '.join(missing)}",
            stacklevel=2,
        )
    width, height = distribution.view
    planner = _Planner(
        detectors, distribution, budget, latency_bucket, min_block, max_depth, padding
    )
    front = planner.candidates(_Rect(0, 0, width, height), 0)
    if not front:
        fastest = min(detectors, key=lambda d: d.batch_latency(1))
        raise ValueError(
            f"no plan fits the budget of {budget * 1000:.2f} ms; the fastest plan (the whole "
            f"view on {fastest.name}) takes {fastest.batch_latency(1) * 1000:.2f} ms"
        )
    best = sorted(front, key=lambda c: (-c.accuracy, c.latency))[:max_plans]
    names = [d.name for d in detectors]
    plans = []
    for plan_id, candidate in enumerate(best):
        blocks: list[Block] = []
        _flatten(candidate.tree, names, blocks)
        blocks.sort(key=lambda b: (b.y1, b.x1))
        plans.append(Plan(plan_id, candidate.accuracy, candidate.latency, blocks))
    return plans
