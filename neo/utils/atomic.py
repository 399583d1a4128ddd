"""Writing files so that a crash never leaves a partial one behind."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def current_umask() -> int:
    """The process's file-creation mask (read by setting it and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; it replaces ``path`` only if the block succeeds.

    The temporary file is named ``.<name>.<random>.tmp``; the final file gets the permissions
    of an ordinary new file (``0o666`` less the umask), not ``mkstemp``'s private ``0o600``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def staging_folder(parent: Path, prefix: str) -> Path:
    """A new empty folder in ``parent`` for files that are moved into place when complete.

    Unlike ``tempfile.mkdtemp`` (mode ``0o700``), it gets the permissions of an ordinary new
    folder (``0o777`` less the umask), which it keeps once renamed to its final name.
    """
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(folder, 0o777 & ~current_umask())
    return folder


def remove_stale_temporaries(folder: Path, suffix: str = "") -> list[Path]:
    """Deletes temporaries that an interrupted :func:`atomic_path` left in ``folder``.

    Args:
        folder: the folder to clean (nothing happens when it does not exist).
        suffix: only temporaries of files with this suffix (e.g. ``.ckpt``).

    Returns:
        The deleted paths.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for tmp in folder.glob(f".*{suffix}.*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def write_json(path: Path, data: Any, indent: int | None = None) -> None:
    """Writes JSON atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=indent)


def check_writable(folder: Path, option: str = "--output") -> Path:
    """``folder`` created if needed and writable; a one-line ``ValueError`` naming it otherwise."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise ValueError(f"{option} {folder}: not writable ({e.strerror or e})") from None
    return folder
