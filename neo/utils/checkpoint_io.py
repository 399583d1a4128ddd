"""Checkpoint files written atomically and read without unpickling arbitrary objects."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from neo.utils.atomic import atomic_path


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupt or not a safe (weights-only) checkpoint."""


def read_checkpoint(path: _PATH, map_location: Any = "cpu") -> dict[str, Any]:
    """Reads a checkpoint with torch's weights-only unpickler; every failure is one clear line.

    Args:
        path: the ``.ckpt`` / ``.pth`` file.
        map_location: where tensors are loaded (``torch.load``'s argument).

    Returns:
        The checkpoint dictionary.

    Raises:
        CheckpointError: the file is missing, unreadable, truncated, or holds objects other than
            tensors and plain containers (such a file is refused, never unpickled).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: not a safe checkpoint (it holds pickled Python objects other than tensors "
            "and plain containers); neo refuses to load it"
        ) from None
    except (RuntimeError, EOFError, KeyError, zipfile.BadZipFile, OSError, ValueError) as e:
        reason = str(e).split("\n", 1)[0].split(". ", 1)[0][:100]
        raise CheckpointError(
            f"{path}: truncated or corrupt checkpoint file ({type(e).__name__}: {reason})"
        ) from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path}: not a checkpoint (expected a dictionary)")
    return checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves to a temporary file then renames it; loads with ``weights_only=True``."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        """Writes the checkpoint; the old file stays intact until the new one is complete."""
        with atomic_path(Path(path)) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(
        self,
        path: _PATH,
        map_location: Any | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        """Reads a checkpoint with the safe unpickler (tensors and plain containers only)."""
        return read_checkpoint(path, map_location)
