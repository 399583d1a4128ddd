"""``neo data check``: validate a dataset up front and list every problem with counts."""

from __future__ import annotations

from typing import Any

import yaml
from jsonargparse import ArgumentParser
from lightning import LightningDataModule
from rich.console import Console
from rich.table import Table

from neo.data.problems import DatasetError, ProblemReport


def add_check_arguments(parser: ArgumentParser) -> None:
    """Options of ``neo data check``."""
    parser.add_argument(
        "--config", type=str, help="a neo config file; its `data` section is checked"
    )
    parser.add_argument(
        "--no_decode", action="store_true", help="skip decoding every image (faster)"
    )
    parser.add_argument("--max_listed", type=int, default=20, help="problems listed per kind")
    parser.add_subclass_arguments(LightningDataModule, "data", required=False)


def data_section(config: str) -> dict[str, Any]:
    """The ``data`` section of a config file (read with yaml.safe_load)."""
    try:
        with open(config, encoding="utf-8") as f:
            content = yaml.safe_load(f)
    except FileNotFoundError:
        raise DatasetError(f"{config}: config file not found") from None
    except yaml.YAMLError as e:
        raise DatasetError(f"{config}: invalid YAML ({e})") from None
    if not isinstance(content, dict) or "data" not in content:
        raise DatasetError(f"{config}: no `data` section")
    return content["data"]


def run_check(parser: ArgumentParser, argv: list[str]) -> int:
    """Parses ``argv``, checks the data module's splits, prints a table; returns the exit code."""
    cfg = parser.parse_args(argv)
    if cfg.config:
        merged = ["--data", yaml.safe_dump(data_section(cfg.config)), *argv]
        cfg = parser.parse_args(merged)
    if cfg.get("data") is None:
        parser.error("give --config FILE or --data.class_path ...")
    datamodule = parser.instantiate_classes(cfg).data
    check = getattr(datamodule, "check", None)
    if check is None:
        raise DatasetError(
            f"{type(datamodule).__name__} cannot be checked (it has no check method)"
        )
    reports: dict[str, ProblemReport] = check(decode_images=not cfg.no_decode)
    return print_reports(reports, cfg.max_listed)


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
