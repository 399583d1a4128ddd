"""Remix's online runtime: selective execution, batching per detector, merging and feedback.

Each frame runs the controller's current plan. A block runs unless its skip window says to skip
it this frame (AIMD: the window grows by one after every run that found nothing and is halved
after a run that found objects). The padded crops of all blocks of one detector are fitted to
its input and run as ONE batch; boxes are mapped back to frame pixels and all blocks' detections
are merged with class-aware NMS. Detections are not filtered by block: a padded crop may see an
object of a neighbouring block too, and NMS keeps the best of the duplicates. A skipped block
contributes nothing to the frame (no detections are carried over from earlier frames). The
measured wall time of the frame feeds :class:`PlanController`, which moves to a faster plan when
frames run over the budget and back to a more accurate one when there is room.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque

import numpy as np
import torch
from torchvision.ops import batched_nms

from neo.remix.detector import Detections, Detector, empty_detections, fit_to_input
from neo.remix.distribution import PADDING, padded
from neo.remix.files import Block, Plan


class SkipWindow:
    """Per-block AIMD skip window: how many frames a block that finds nothing may be skipped.

    The window (frames to skip after a run) and the countdown (frames left to skip now) are kept
    apart: the first call of :meth:`should_run` always runs the block.

    Args:
        initial: the window before the first run.
        max_window: the window never grows past this.
        increase: added to the window after a run that found nothing.
        decrease: the window is multiplied by this (and floored) after a run that found objects.
    """

    def __init__(
        self, initial: int = 0, max_window: int = 8, increase: int = 1, decrease: float = 0.5
    ) -> None:
        if max_window < 0 or increase < 0 or not 0.0 <= decrease < 1.0:
            raise ValueError(
                f"skip window: need max_window >= 0, increase >= 0 and 0 <= decrease < 1, got "
                f"{max_window}, {increase}, {decrease}"
            )
        self.max_window = max_window
        self.increase = increase
        self.decrease = decrease
        self.window = min(max(0, int(initial)), max_window)
        self.countdown = 0

    def should_run(self) -> bool:
        """Whether the block runs this frame; a skipped frame counts the countdown down.

        Returns:
            True when the countdown is 0, otherwise False (after decrementing it).
        """
        if self.countdown == 0:
            return True
        self.countdown -= 1
        return False

    def update(self, found_objects: bool) -> None:
        """Adapts the window after a run of the block and restarts the countdown.

        Args:
            found_objects: whether the run found any object in the block.
        """
        if found_objects:
            self.window = math.floor(self.window * self.decrease)
        else:
            self.window = min(self.window + self.increase, self.max_window)
        self.countdown = self.window


class PlanController:
    """Feedback control of the plan from measured frame latency.

    Starts at the most accurate plan whose estimated latency fits the budget (the fastest plan
    when none does). After ``patience`` consecutive frames whose running median latency is above
    ``budget * (1 + tolerance)`` it moves to the next faster plan (the slowest plan with a lower
    ``est_lat``). After ``patience`` consecutive frames with the median below
    ``budget * (1 - tolerance)`` it moves to the most accurate plan whose ``est_lat``, scaled by
    the current plan's measured / estimated latency, fits the budget, if that is more accurate
    than the current one. Every switch clears the latency history and the counters, so a new plan
    is judged on its own frames only.

    Args:
        plans: the candidate plans (any order).
        budget: seconds per frame.
        tolerance: relative band around the budget in which nothing changes.
        patience: frames a condition must hold before a switch.
        history: frames in the running median.
    """

    def __init__(
        self,
        plans: list[Plan],
        budget: float,
        tolerance: float = 0.1,
        patience: int = 3,
        history: int = 5,
    ) -> None:
        if not plans:
            raise ValueError("plan controller: no plans")
        if budget <= 0 or tolerance < 0 or patience < 1 or history < 1:
            raise ValueError(
                f"plan controller: need budget > 0, tolerance >= 0, patience >= 1 and "
                f"history >= 1, got {budget}, {tolerance}, {patience}, {history}"
            )
        self.plans = list(plans)
        self.budget = budget
        self.tolerance = tolerance
        self.patience = patience
        self._latencies: deque[float] = deque(maxlen=history)
        self._over = 0
        self._under = 0
        self.switches = 0
        fitting = [i for i, p in enumerate(self.plans) if p.est_lat <= budget]
        if fitting:
            self._index = max(fitting, key=lambda i: (self.plans[i].est_ap, -self.plans[i].est_lat))
        else:
            self._index = self._fastest()

    @property
    def current(self) -> Plan:
        """The plan to run now."""
        return self.plans[self._index]

    @property
    def median_latency(self) -> float | None:
        """Running median of the current plan's measured latency (None before any frame)."""
        return statistics.median(self._latencies) if self._latencies else None

    def _fastest(self) -> int:
        return min(
            range(len(self.plans)),
            key=lambda i: (self.plans[i].est_lat, -self.plans[i].est_ap),
        )

    def _next_faster(self) -> int | None:
        current = self.current
        faster = [i for i, p in enumerate(self.plans) if p.est_lat < current.est_lat]
        if not faster:
            return None
        return max(faster, key=lambda i: (self.plans[i].est_lat, self.plans[i].est_ap))

    def _more_accurate(self, measured: float) -> int | None:
        current = self.current
        ratio = measured / current.est_lat if current.est_lat > 0 else 1.0
        better = [
            i
            for i, p in enumerate(self.plans)
            if p.est_ap > current.est_ap and p.est_lat * ratio <= self.budget
        ]
        if not better:
            return None
        return max(better, key=lambda i: (self.plans[i].est_ap, -self.plans[i].est_lat))

    def _switch(self, index: int) -> None:
        self._index = index
        self._latencies.clear()
        self._over = 0
        self._under = 0
        self.switches += 1

    def observe(self, latency: float) -> Plan:
        """Records one frame's measured latency and switches plan when warranted.

        Args:
            latency: seconds the frame took.

        Returns:
            The plan for the next frame.
        """
        self._latencies.append(float(latency))
        median = statistics.median(self._latencies)
        if median > self.budget * (1 + self.tolerance):
            self._over += 1
            self._under = 0
        elif median < self.budget * (1 - self.tolerance):
            self._under += 1
            self._over = 0
        else:
            self._over = self._under = 0
        if self._over >= self.patience:
            target = self._next_faster()
            if target is not None:
                self._switch(target)
        elif self._under >= self.patience:
            target = self._more_accurate(median)
            if target is not None:
                self._switch(target)
        return self.current


def plan_view(plan: Plan) -> tuple[int, int]:
    """The ``(width, height)`` of the view a plan's blocks cover (from pixel 0).

    Args:
        plan: the plan.

    Returns:
        ``(max x2, max y2)`` of its blocks.
    """
    return max(b.x2 for b in plan.blocks), max(b.y2 for b in plan.blocks)


def merge_detections(parts: list[Detections], iou: float = 0.5) -> Detections:
    """Class-aware NMS over the detections of several blocks, in frame pixels.

    Args:
        parts: detections of each block.
        iou: boxes of one label overlapping more than this are suppressed.

    Returns:
        The kept detections, highest score first.
    """
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return empty_detections()
    boxes = np.concatenate([p[0] for p in parts]).astype(np.float32)
    scores = np.concatenate([p[1] for p in parts]).astype(np.float32)
    labels = np.concatenate([p[2] for p in parts]).astype(np.int64)
    keep = batched_nms(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(labels), iou
    ).numpy()
    return boxes[keep], scores[keep], labels[keep]


def to_frame(
    detections: Detections, scale: float, offset: tuple[int, int], view: tuple[int, int]
) -> Detections:
    """Maps detections from a detector's input pixels back to frame pixels.

    Args:
        detections: boxes in the fitted canvas of a crop.
        scale: canvas pixels per crop pixel (from :func:`fit_to_input`).
        offset: ``(x1, y1)`` of the crop in the frame.
        view: ``(width, height)`` of the frame; boxes are clipped to it.

    Returns:
        The detections in frame pixels, boxes left empty by clipping dropped.
    """
    boxes, scores, labels = detections
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4) / np.float32(scale)
    boxes = boxes + np.array([offset[0], offset[1], offset[0], offset[1]], np.float32)
    width, height = view
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return (
        boxes[keep],
        np.asarray(scores, np.float32).reshape(-1)[keep],
        np.asarray(labels, np.int64).reshape(-1)[keep],
    )


def _centred_in(boxes: np.ndarray, block: Block) -> np.ndarray:
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    return (cx >= block.x1) & (cx < block.x2) & (cy >= block.y1) & (cy < block.y2)


class RemixRuntime:
    """Runs Remix plans on frames: selective execution, one batch per detector, NMS merge.

    A block reports the detections centred in its own (unpadded) rectangle: the padding lets it
    see whole the objects it owns, and an object cut by the crop's edge, whose centre lies in the
    padding, is left to the block that owns it. Its skip window adapts to whether it reported
    anything when it ran.

    Args:
        detectors: detectors by name; every block's detector must be here.
        plans: the plans (all of one view, e.g. from ``plans.json``).
        budget: seconds per frame.
        padding: growth of each block's crop per side, as a fraction of the block's size.
        nms_iou: IoU of the class-aware NMS that merges the blocks' detections.
        use_skip_windows: False runs every block every frame.
        max_window: the largest skip window (frames).
        controller: the plan controller (default: ``PlanController(plans, budget)``).
        owned_only: False keeps every detection of the padded crop and leaves the duplicates
            of neighbouring blocks to the NMS.
    """

    def __init__(
        self,
        detectors: dict[str, Detector],
        plans: list[Plan],
        budget: float,
        padding: float = PADDING,
        nms_iou: float = 0.5,
        use_skip_windows: bool = True,
        max_window: int = 8,
        controller: PlanController | None = None,
        owned_only: bool = True,
    ) -> None:
        if not plans:
            raise ValueError("remix runtime: no plans")
        for plan in plans:
            if not plan.blocks:
                raise ValueError(f"remix runtime: plan {plan.plan_id} has no blocks")
            missing = sorted({b.detector_name for b in plan.blocks} - set(detectors))
            if missing:
                raise ValueError(
                    f"remix runtime: plan {plan.plan_id} uses detectors {', '.join(missing)} "
                    f"that were not given (given: {', '.join(sorted(detectors)) or 'none'})"
                )
        views = {plan_view(p) for p in plans}
        if len(views) != 1:
            sizes = ", ".join(f"{w}x{h}" for w, h in sorted(views))
            raise ValueError(f"remix runtime: the plans cover different views ({sizes})")
        if padding < 0:
            raise ValueError(f"remix runtime: padding must be >= 0, got {padding}")
        self.view: tuple[int, int] = views.pop()
        self.detectors = detectors
        self.plans = list(plans)
        self.padding = padding
        self.nms_iou = nms_iou
        self.use_skip_windows = use_skip_windows
        self.owned_only = owned_only
        self.controller = controller or PlanController(self.plans, budget)
        # keyed by (plan object, block position): a plan's windows survive switching away
        self.skip_windows = {
            (id(plan), i): SkipWindow(initial=block.skip_window, max_window=max_window)
            for plan in [*self.plans, *self.controller.plans]
            for i, block in enumerate(plan.blocks)
        }
        self._log: dict[str, float | int] = {}

    def run_frame(self, frame: np.ndarray) -> tuple[Detections, float]:
        """Detects objects in one frame with the current plan and feeds the controller.

        Args:
            frame: uint8 RGB (H, W, 3) of the plans' view size.

        Returns:
            ``((boxes xyxy (N, 4) float32 frame pixels, scores (N,), labels (N,) int64),
            seconds)`` — the merged detections and the frame's measured wall time.

        Raises:
            ValueError: the frame is not (H, W, 3) of the plans' view.
        """
        start = time.perf_counter()
        width, height = self.view
        if (
            frame.dtype != np.uint8
            or frame.ndim != 3
            or frame.shape[2] != 3
            or frame.shape[:2] != (height, width)
        ):
            got = f"{frame.shape[1]}x{frame.shape[0]}" if frame.ndim >= 2 else str(frame.shape)
            raise ValueError(
                f"remix runtime: frame is {got} (shape {tuple(frame.shape)}) but the plans' view "
                f"is {width}x{height} (uint8 H, W, 3 expected, got {frame.dtype})"
            )
        plan = self.controller.current
        to_run: dict[str, list[int]] = {}
        skipped = 0
        for i, block in enumerate(plan.blocks):
            window = self.skip_windows[(id(plan), i)]
            if self.use_skip_windows and not window.should_run():
                skipped += 1
                continue
            to_run.setdefault(block.detector_name, []).append(i)
        parts: list[Detections] = []
        for name, indices in to_run.items():
            detector = self.detectors[name]
            canvases, scales, offsets = [], [], []
            for i in indices:
                x1, y1, x2, y2 = padded(plan.blocks[i], self.view, self.padding)
                canvas, scale = fit_to_input(frame[y1:y2, x1:x2], detector.input_size)
                canvases.append(canvas)
                scales.append(scale)
                offsets.append((x1, y1))
            results = detector(np.stack(canvases))
            if len(results) != len(indices):
                raise ValueError(
                    f"remix runtime: detector {name!r} returned {len(results)} results for a "
                    f"batch of {len(indices)}"
                )
            for i, result, scale, offset in zip(indices, results, scales, offsets):
                mapped = to_frame(result, scale, offset, self.view)
                owned = _centred_in(mapped[0], plan.blocks[i])
                parts.append(tuple(a[owned] for a in mapped) if self.owned_only else mapped)
                self.skip_windows[(id(plan), i)].update(bool(owned.any()))
        merged = merge_detections(parts, self.nms_iou)
        latency = time.perf_counter() - start
        self._log = {
            "plan_id": plan.plan_id,
            "blocks_run": len(plan.blocks) - skipped,
            "blocks_skipped": skipped,
            "detections": len(merged[0]),
            "latency": latency,
        }
        self.controller.observe(latency)
        return merged, latency

    def last_frame_log(self) -> dict[str, float | int]:
        """What the last frame did: plan_id, blocks_run, blocks_skipped, detections, latency."""
        return dict(self._log)
