"""Checkpoint files written atomically and read without unpickling arbitrary objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from neo.utils.atomic import atomic_path


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
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: checkpoint file not found")
        return torch.load(path, map_location=map_location, weights_only=True)
