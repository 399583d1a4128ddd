"""Where a run came from: the code's git commit and a fingerprint of the data it trained on.

:func:`run_provenance` is written beside the resolved config of every run
(``provenance.json``) and sent to W&B with it, so that two runs can be told apart by their code
and their labels, not only by their settings.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def git_commit(folder: Path | None = None) -> str | None:
    """The commit checked out in ``folder`` (default: the working directory).

    Returns:
        The full hash, with ``-dirty`` when tracked files differ from it; ``None`` outside a git
        checkout or without git.
    """
    folder = Path(folder or Path.cwd())

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    changes = git("status", "--porcelain", "--untracked-files=no")
    return f"{commit}-dirty" if changes else commit


def data_fingerprint(files: Iterable[Path]) -> str | None:
    """A SHA-256 (16 hex digits) of the files' names and contents, in sorted order.

    Args:
        files: the files that define the data (annotation files, meta CSVs); missing ones are
            counted by name only.

    Returns:
        The fingerprint, or ``None`` when there are no files.
    """
    paths = sorted({Path(f) for f in files}, key=str)
    if not paths:
        return None
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        if path.is_file():
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def run_provenance(datamodule: Any) -> dict[str, Any]:
    """The git commit and the data fingerprint of a run.

    Args:
        datamodule: the run's data module; its ``fingerprint_sources()`` (if it has one) names
            the files that define its data.

    Returns:
        ``{"git_commit", "data_fingerprint", "data_files"}`` (``None`` where unknown).
    """
    sources = getattr(datamodule, "fingerprint_sources", None)
    files = list(sources()) if callable(sources) else []
    return {
        "git_commit": git_commit(),
        "data_fingerprint": data_fingerprint(files),
        "data_files": len(files),
    }
