"""Run folders: ``<save_dir>/<name>/version_N/`` holding ``checkpoints/`` (Lightning's layout)."""

from __future__ import annotations

import re
from pathlib import Path

LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


def version_folders(root: Path) -> list[tuple[int, Path]]:
    """The ``version_N`` folders under ``root``, newest (highest N) first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        match = re.fullmatch(r"version_(\d+)", folder.name)
        if match and folder.is_dir():
            found.append((int(match.group(1)), folder))
    return sorted(found, reverse=True)


def latest_last_checkpoint(root: Path) -> tuple[int, Path] | None:
    """``(N, path)`` of the newest ``root/version_N/checkpoints/last.ckpt``, else None."""
    for version, folder in version_folders(root):
        if (folder / LAST_CHECKPOINT).is_file():
            return version, folder / LAST_CHECKPOINT
    return None


def keep_previous_metrics(log_dir: Path) -> Path | None:
    """Renames ``metrics.csv`` to ``metrics.<k>.csv`` (first free k); returns the new path.

    Lightning's CSVLogger deletes an existing ``metrics.csv`` when a run continues in its folder.
    """
    metrics = Path(log_dir) / "metrics.csv"
    if not metrics.is_file():
        return None
    k = 0
    while (kept := metrics.with_name(f"metrics.{k}.csv")).exists():
        k += 1
    metrics.rename(kept)
    return kept
