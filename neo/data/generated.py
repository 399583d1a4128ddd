"""Generated data folders: built once beside their final place, renamed in with a marker.

A generator writes into a hidden staging folder next to ``out``; the folder gets a ``.complete``
file holding the generation parameters and is renamed to ``out``. An interrupted run therefore
never leaves a folder that looks finished, and processes generating at the same time (DDP ranks)
all end with the same complete folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from neo.data.problems import DatasetError
from neo.utils.atomic import staging_folder

MARKER = ".complete"
Result = TypeVar("Result")


def read_marker(out: Path) -> dict | None:
    """The generation parameters recorded in a complete folder, else ``None``."""
    try:
        return json.loads((Path(out) / MARKER).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def holds(out: Path, params: dict, what: str, allow_empty: bool = False) -> bool:
    """Whether ``out`` already holds the data made with ``params``.

    Args:
        out: the folder.
        params: the generation parameters.
        what: what the data is, for messages (e.g. ``synthetic dataset``).
        allow_empty: an existing empty folder counts as absent (it is filled).

    Raises:
        DatasetError: ``out`` exists but holds something else.
    """
    out = Path(out)
    if not out.exists() or (allow_empty and out.is_dir() and not any(out.iterdir())):
        return False
    recorded = read_marker(out)
    if recorded is None:
        raise DatasetError(
            f"{out}: exists but is not a complete {what} (no {MARKER}); remove it or choose "
            "another folder"
        )
    if recorded != params:
        raise DatasetError(
            f"{out}: holds a {what} made with other parameters {recorded}; remove it or choose "
            "another folder"
        )
    return True


def generate_once(
    out: Path,
    params: dict,
    write: Callable[[Path], Result],
    what: str,
    allow_empty: bool = False,
) -> tuple[bool, Result | None]:
    """Builds ``out`` with ``write(staging folder)`` unless it already holds ``params``.

    Args:
        out: the final folder.
        params: the generation parameters (JSON), recorded in the marker.
        write: writes the data into the folder it is given; its result is returned.
        what: what the data is, for messages.
        allow_empty: an existing empty folder is filled instead of refused.

    Returns:
        ``(True, write's result)`` when this call built the folder, ``(False, None)`` when it
        was already there.
    """
    out = Path(out)
    if holds(out, params, what, allow_empty):
        return False, None
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_folder(out.parent, f".{out.name}.tmp-{os.getpid()}-")
    try:
        result = write(staging)
        (staging / MARKER).write_text(json.dumps(params), encoding="utf-8")
        with contextlib.suppress(OSError):  # another process moved its copy into place first
            os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not holds(out, params, what):
        raise RuntimeError(f"{out}: could not move the generated {what} into place")
    return True, result
