"""Checkpoint files written atomically and read without unpickling arbitrary objects."""

from __future__ import annotations

import os
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


def read_checkpoint(path: _PATH, map_location: Any = "cpu", mmap: bool = False) -> dict[str, Any]:
    """Reads a checkpoint with torch's weights-only unpickler; every failure is one clear line.

    Args:
        path: the ``.ckpt`` / ``.pth`` file.
        map_location: where tensors are loaded (``torch.load``'s argument).
        mmap: map the tensors' storage instead of reading it (for a look at the metadata only).

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
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        if "global" not in str(e).lower():  # not an object refused: bytes that are no pickle
            raise CheckpointError(
                f"{path}: truncated or corrupt checkpoint file (not a torch checkpoint)"
            ) from None
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


HYPERPARAMETER_KEYS = ("hyper_parameters", "datamodule_hyper_parameters")


def plain(value: Any) -> Any:
    """``value`` with every path turned into a string, inside dicts, lists and tuples.

    Hyper-parameters typed ``Path`` (``pretrained_checkpoint``, ``backbone_weights``, a data root)
    would otherwise be pickled as ``PosixPath`` objects, which the weights-only loader refuses.
    """
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return type(value)((k, plain(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value)
    return value


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves to a temporary file then renames it; loads with ``weights_only=True``."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        """Writes the checkpoint, loadable weights-only; the old file stays until it is complete."""
        checkpoint = {
            k: plain(v) if k in HYPERPARAMETER_KEYS else v for k, v in checkpoint.items()
        }
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
