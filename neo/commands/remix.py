"""``neo remix ...``: Remix's offline tools (``neo remix plan`` partitions a view into blocks).

``neo remix plan --profiles profiles.json --history oracle.json --view 1920 1080 --budget 0.05``
reads the detectors' profiles and the historical frames' boxes (a COCO file at the view's
resolution), plans the partitions that fit the latency budget and writes ``plans.json``.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

from jsonargparse import ArgumentParser

from neo.remix.distribution import PADDING
from neo.remix.files import Plan

PLAN = "plan"
MODEL_VERBS = ("profile", "run")
# verb -> (module, function) of the other verbs; only the module of the verb run is imported
FUNCTION_VERBS: dict[str, tuple[str, str]] = {
    "profile": ("neo.remix.profiler", "remix_profile"),
    "run": ("neo.remix.run", "remix_run"),
    "split": ("neo.remix.scenes", "split_history"),
}


def remix_plan(
    profiles: Path,
    history: Path,
    view: tuple[int, int],
    budget: float,
    out: Path = Path("plans.json"),
    max_plans: int = 10,
    latency_bucket: float = 0.001,
    padding: float = PADDING,
) -> list[Plan]:
    """Plan how detectors partition the view within a latency budget and write plans.json.

    Args:
        profiles: ``profiles.json`` of the detectors (each with its ``input_size``).
        history: COCO file of historical frames' boxes, labelled at the view's resolution.
        view: ``W H`` of the frames, e.g. ``1920 1080``.
        budget: latency budget in seconds per frame.
        out: the ``plans.json`` to write.
        max_plans: how many plans to keep at most.
        latency_bucket: seconds per latency bucket of the pruning.
        padding: the crop margin per side that ``neo remix run`` will use (share of a block's
            size); an object larger than its block's padded crop counts as missed.

    Returns:
        The plans written, most accurate first.
    """
    from neo.remix.distribution import from_coco
    from neo.remix.files import load_profiles, save_plans
    from neo.remix.planner import plan

    width, height = (int(v) for v in view)
    if width <= 0 or height <= 0:
        raise ValueError(f"--view {width} {height}: width and height must be positive")
    detectors = load_profiles(Path(profiles))
    distribution = from_coco(Path(history), (width, height))
    start = time.perf_counter()
    plans = plan(detectors, distribution, budget, max_plans, latency_bucket, padding=padding)
    seconds = time.perf_counter() - start
    save_plans(Path(out), plans)
    print(format_plans(plans))
    print(
        f"{len(plans)} plans for {width}x{height} within {budget * 1000:.1f} ms from "
        f"{len(distribution)} objects in {distribution.num_frames} frames, planned in "
        f"{seconds:.2f} s; written to {out}"
    )
    return plans


def format_plans(plans: list[Plan]) -> str:
    """A short table: plan, estimated AP, estimated latency (ms) and blocks per detector.

    Args:
        plans: the plans.

    Returns:
        The table's lines joined.
    """
    lines = [f"{'plan':>4}  {'est AP':>7}  {'est ms':>7}  blocks per detector"]
    for p in plans:
        blocks = ", ".join(f"{name} x{count}" for name, count in p.blocks_per_detector().items())
        lines.append(f"{p.plan_id:>4}  {p.est_ap:>7.4f}  {p.est_lat * 1000:>7.2f}  {blocks}")
    return "\n".join(lines)


def description() -> str:
    """One line naming the verbs (the help of ``neo remix``)."""
    verbs = ",".join(["profile", PLAN, "run", "split"])
    return f"Remix: profile detectors, plan partitions, run them (neo remix {{{verbs}}})"


def add_verbs(parser: ArgumentParser) -> None:
    """Adds the verbs to the ``neo remix`` parser (already a subcommand of ``neo``).

    Args:
        parser: the ``neo remix`` parser.
    """
    subcommands = parser.add_subcommands()
    for verb in ("profile", PLAN, "run", "split"):
        function = _function(verb)
        summary = (function.__doc__ or "").strip().split("\n")[0]
        sub = type(parser)(description=summary)
        skip = set()
        if verb in MODEL_VERBS:
            sub.add_argument(
                "--models",
                type=str,
                nargs="+",
                required=True,
                help="neo model files (.ckpt, .onnx, .engine, .ep), space separated or a JSON list",
            )
            skip = {"models"}
        sub.add_function_arguments(function, as_positional=False, skip=skip)
        subcommands.add_subcommand(verb, sub, help=summary)


def run(config: Any) -> int:
    """Runs ``neo remix <verb>`` from its parsed options.

    Args:
        config: the parsed ``neo remix`` namespace.

    Returns:
        The exit code.
    """
    verb = config.subcommand
    kwargs = config[verb].as_dict()
    kwargs.pop("__path__", None)
    if verb in MODEL_VERBS:
        from neo.commands.rf_detect import models_as_list

        kwargs["models"] = models_as_list(kwargs["models"])
    _function(verb)(**kwargs)
    return 0


def _function(verb: str) -> Any:
    if verb == PLAN:
        return remix_plan
    module, name = FUNCTION_VERBS[verb]
    return getattr(importlib.import_module(module), name)
