"""``neo data check``: validate a dataset up front and list every problem with counts."""

from __future__ import annotations

from argparse import SUPPRESS
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser, Namespace
from lightning import LightningDataModule
from rich.console import Console
from rich.table import Table

from neo.data.problems import DatasetError, ProblemReport


def add_check_arguments(parser: ArgumentParser) -> None:
    """Options of ``neo data check``: a neo config (its ``data`` section) or ``--data``."""
    parser.add_argument(
        "--config",
        action=ActionConfigFile,
        help="neo config file(s), as given to `neo fit`; their `data` section is checked",
    )
    parser.add_argument(
        "--no_decode", action="store_true", help="skip decoding every image (faster)"
    )
    parser.add_argument("--max_listed", type=int, default=20, help="problems listed per kind")
    parser.add_subclass_arguments(LightningDataModule, "data", required=False)
    # the other sections of a neo config are accepted and ignored
    for key in ("trainer", "model", "optimizer", "lr_scheduler"):
        parser.add_argument(f"--{key}", type=dict | str | bool | None, help=SUPPRESS)
    parser.add_argument("--seed_everything", type=bool | int | None, help=SUPPRESS)
    parser.add_argument("--ckpt_path", type=str | None, help=SUPPRESS)


def run_check(config: Namespace) -> int:
    """Checks the splits of the data module in ``config``, prints a table; returns the exit code."""
    if config.get("data") is None:
        raise DatasetError("neo data check: give --config FILE or --data.class_path ...")
    parser = ArgumentParser()
    add_check_arguments(parser)
    datamodule = parser.instantiate_classes(config).data
    check = getattr(datamodule, "check", None)
    if check is None:
        raise DatasetError(
            f"{type(datamodule).__name__} cannot be checked (it has no check method)"
        )
    reports: dict[str, ProblemReport] = check(decode_images=not config.no_decode)
    failed = print_reports(reports, config.max_listed)
    if not failed:
        warning = anchor_warning(datamodule, config.get("model"))
        if warning:
            Console().print(warning, markup=False, highlight=False)
    return failed


def anchor_warning(
    datamodule: LightningDataModule, model: Any, min_recall: float = 0.9
) -> str | None:
    """A warning when a Faster R-CNN's anchors match too few training boxes, else None.

    The anchors are those of the config's ``FasterRCNNTask`` (torchvision's when the config
    names none); a model that fits its anchors at start-up is judged on the fitted ones.
    """
    from neo.models.anchors import anchor_recall, choose_anchors, configured_anchors

    model = model if isinstance(model, dict) else {}
    if model and not str(model.get("class_path", "")).endswith("FasterRCNNTask"):
        return None
    try:
        box_wh = datamodule.training_box_sizes()
    except (AttributeError, NotImplementedError, ValueError):
        return None
    if not len(box_wh):
        return None
    args = model.get("init_args") or {}
    sizes, ratios = configured_anchors(
        args.get("anchor_sizes"), args.get("aspect_ratios"), args.get("returned_layers")
    )
    recall = anchor_recall(box_wh, sizes, ratios)
    if args.get("fit_anchors"):
        sizes, ratios, _, recall = choose_anchors(box_wh, sizes, ratios)
    if recall >= min_recall:
        return None
    return (
        f"warning: anchor recall {recall:.3f}: only {recall:.0%} of the {len(box_wh)} training "
        f"boxes have an anchor (sizes {sizes}, aspect ratios {ratios}) at IoU >= 0.5; set "
        "`fit_anchors: true` on FasterRCNNTask to fit them to the data"
    )


def print_reports(reports: dict[str, ProblemReport], max_listed: int = 20) -> int:
    """Prints per-split counts and the problems themselves; 1 if any split has errors."""
    console = Console()
    table = Table(title="dataset check")
    for column in ("split", "kind", "count", "severity"):
        table.add_column(column)
    failed = False
    for split, report in reports.items():
        fatal = {p.kind for p in report.errors}
        failed |= bool(fatal)
        if not report.problems:
            table.add_row(split, "-", "0", "ok")
        for kind, count in sorted(report.counts().items()):
            table.add_row(split, kind, str(count), "error" if kind in fatal else "warning")
    console.print(table)
    for split, report in reports.items():
        shown: dict[str, int] = {}
        for problem in report.problems:
            shown[problem.kind] = shown.get(problem.kind, 0) + 1
            if shown[problem.kind] <= max_listed:
                level = "error" if problem.fatal else "warning"
                console.print(f"[{split}] {level}: {problem}", markup=False, highlight=False)
    console.print("FAILED: fix the errors above" if failed else "OK: the dataset can be used")
    return 1 if failed else 0
