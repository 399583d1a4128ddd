"""``RemixSystem``: profiling, planning and the adaptive runtime behind one object.

The seed's API: ``RemixSystem(detectors, oracle, latency_budget, profile_path, plans_path)``, then
:meth:`~RemixSystem.profile_networks`, :meth:`~RemixSystem.generate_plans`,
:meth:`~RemixSystem.initialize_runtime` and :meth:`~RemixSystem.run_frame` /
:meth:`~RemixSystem.run_video`. Profiles and plans are the ``profiles.json`` / ``plans.json``
files of :mod:`neo.remix.files`; with ``load_existing`` a profile or plan file already there is
reused instead of measured or planned again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from neo.remix.detector import Detections, Detector
from neo.remix.distribution import ObjectDistribution, from_coco
from neo.remix.files import Plan, Profile, load_plans, load_profiles, save_plans, update_profile
from neo.remix.planner import plan
from neo.remix.profiler import NNProfiler, accuracy_vector_against, detect_frames, measure_latency
from neo.remix.runtime import RemixRuntime


class RemixSystem:
    """Remix for a set of detectors within a latency budget.

    Args:
        detectors: the detectors (distinct names; see :class:`neo.remix.detector.Detector`).
        oracle: an accurate detector that labels historical or profiling frames when there are
            no annotations (None: annotations must be given).
        latency_budget: seconds per frame.
        profile_path: the ``profiles.json`` written and read.
        plans_path: the ``plans.json`` written and read.
        load_existing: reuse the profiles and plans already in those files.
        oracle_threshold: the oracle's detections at or above this score count as objects.
    """

    def __init__(
        self,
        detectors: Sequence[Detector],
        oracle: Detector | None,
        latency_budget: float,
        profile_path: Path,
        plans_path: Path,
        load_existing: bool = True,
        oracle_threshold: float = 0.5,
    ) -> None:
        names = [d.name for d in detectors]
        if len(set(names)) != len(names):
            raise ValueError(f"detector names must be distinct, got {names}")
        if latency_budget <= 0:
            raise ValueError(f"latency_budget must be positive, got {latency_budget}")
        self.detectors = {d.name: d for d in detectors}
        self.oracle = oracle
        self.latency_budget = float(latency_budget)
        self.profile_path = Path(profile_path)
        self.plans_path = Path(plans_path)
        self.load_existing = load_existing
        self.oracle_threshold = oracle_threshold
        self.profiles: dict[str, Profile] = {}
        self.plans: list[Plan] = []
        self.runtime: RemixRuntime | None = None

    def profile_networks(
        self,
        annotations: Path | dict | None = None,
        images_root: Path | None = None,
        frames: Sequence[np.ndarray] | None = None,
        profiler: NNProfiler | None = None,
    ) -> dict[str, Profile]:
        """Latency per batch and accuracy per size bin of every detector, into ``profiles.json``.

        Accuracy is measured on a COCO dataset (``annotations`` and ``images_root``) or, for
        unlabelled ``frames``, against the oracle's detections.

        Returns:
            The profiles of this system's detectors.
        """
        existing = load_profiles(self.profile_path) if self.profile_path.is_file() else {}
        profiler = profiler or NNProfiler()
        for name, detector in self.detectors.items():
            if self.load_existing and name in existing:
                self.profiles[name] = existing[name]
                continue
            if annotations is not None and images_root is not None:
                profile = profiler.profile(detector, annotations, Path(images_root))
            elif frames is not None and self.oracle is not None:
                latencies = measure_latency(
                    detector, profiler.batch_sizes, profiler.warmup, profiler.runs
                )
                accuracy = accuracy_vector_against(
                    detector, self.oracle, frames, oracle_threshold=self.oracle_threshold
                )
                profile = Profile(
                    name,
                    latencies[min(latencies)],
                    tuple(float(v) for v in accuracy),
                    detector.input_size,
                    latencies,
                )
            else:
                raise ValueError(
                    "profile_networks needs annotations and images_root, or frames and an oracle"
                )
            update_profile(self.profile_path, profile)
            self.profiles[name] = profile
        return dict(self.profiles)

    def distribution(
        self, view_shape: tuple[int, int], historical_frames: Path | Sequence[np.ndarray]
    ) -> ObjectDistribution:
        """Object boxes of the historical frames: a COCO file, or frames labelled by the oracle.

        Args:
            view_shape: ``(width, height)`` of the frames.
            historical_frames: COCO file at the view's resolution, or uint8 RGB frames.
        """
        if isinstance(historical_frames, str | Path):
            return from_coco(Path(historical_frames), view_shape)
        if self.oracle is None:
            raise ValueError("labelling historical frames needs an oracle detector")
        boxes = []
        for frame in historical_frames:
            if (frame.shape[1], frame.shape[0]) != tuple(view_shape):
                raise ValueError(
                    f"a historical frame is {frame.shape[1]}x{frame.shape[0]}, the view "
                    f"{view_shape[0]}x{view_shape[1]}"
                )
            found, scores, _ = detect_frames(self.oracle, [frame])[0]
            found = found[scores >= self.oracle_threshold]
            boxes.append(np.concatenate([found[:, :2], found[:, 2:] - found[:, :2]], axis=1))
        xywh = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
        return ObjectDistribution(xywh, len(historical_frames), tuple(view_shape))

    def generate_plans(
        self,
        view_shape: tuple[int, int],
        historical_frames: Path | Sequence[np.ndarray],
        max_plans: int = 10,
    ) -> list[Plan]:
        """The best plans within the budget for this view, written to ``plans.json``.

        Args:
            view_shape: ``(width, height)`` of the frames.
            historical_frames: COCO file of the historical frames' boxes, or the frames.
            max_plans: plans kept at most.
        """
        if self.load_existing and self.plans_path.is_file():
            plans = load_plans(self.plans_path, self.profiles or None, tuple(view_shape))
            if plans and all(b.detector_name in self.detectors for p in plans for b in p.blocks):
                self.plans = plans
                return plans
        if not self.profiles:
            self.profiles = load_profiles(self.profile_path)
        profiles = {n: p for n, p in self.profiles.items() if n in self.detectors}
        distribution = self.distribution(view_shape, historical_frames)
        self.plans = plan(profiles, distribution, self.latency_budget, max_plans)
        save_plans(self.plans_path, self.plans)
        return self.plans

    def initialize_runtime(self, **options: object) -> RemixRuntime:
        """The runtime over the plans (read from ``plans.json`` if not generated here).

        Args:
            **options: more :class:`~neo.remix.runtime.RemixRuntime` arguments (``padding``,
                ``nms_iou``, ``use_skip_windows``, ``max_window``).
        """
        if not self.plans:
            self.plans = load_plans(self.plans_path, self.profiles or None)
        self.runtime = RemixRuntime(self.detectors, self.plans, self.latency_budget, **options)
        return self.runtime

    def run_frame(self, frame: np.ndarray) -> tuple[Detections, float]:
        """Detections of one uint8 RGB frame (frame pixels) and the seconds it took."""
        if self.runtime is None:
            self.initialize_runtime()
        return self.runtime.run_frame(frame)

    def run_video(
        self, path: Path, max_frames: int | None = None
    ) -> Iterator[tuple[int, Detections, float]]:
        """``(frame index, detections, seconds)`` for every frame of a video file, in order.

        Args:
            path: the video.
            max_frames: stop after this many frames.
        """
        from neo.deploy.frames import iter_video_frames  # torch-heavy: loaded when used

        for index, frame in enumerate(iter_video_frames(path)):
            if max_frames is not None and index >= max_frames:
                return
            detections, seconds = self.run_frame(frame)
            yield index, detections, seconds
