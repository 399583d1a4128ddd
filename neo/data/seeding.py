"""Seeds of the augmentation streams: one per DataLoader worker, epoch and rank, from the run seed.

DataLoader workers start as copies of one transform, so streams seeded once would repeat each
other in every worker and, with non-persistent workers, in every epoch. :class:`StreamSeed`
tells a transform when to reseed and with what:

- in a worker: from the worker's seed (``get_worker_info().seed``), which PyTorch derives from
  the main process's torch generator (so from ``seed_everything``) for each worker and each
  epoch whose workers are started afresh;
- in the main process (``num_workers=0``): once, from ``torch.initial_seed()`` (the
  ``seed_everything`` value), the stream then runs on through the epochs;
- always with the process's global rank, so that DDP ranks seeded alike draw differently, and
  with the transform's own ``seed`` when one is given.

Two runs with the same seed therefore draw the same augmentations, and another seed draws others.
"""

from __future__ import annotations

import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from torch.utils.data import get_worker_info


class StreamSeed:
    """Decides when a transform's random streams are (re)seeded.

    Args:
        seed: the transform's own seed; None derives every stream from the run seed alone. A
            given seed seeds the main-process stream by itself (as it always did).
    """

    def __init__(self, seed: int | None) -> None:
        self.seed = seed
        self._key: tuple[str, int] | None = None

    def initial(self) -> list[int] | None:
        """Entropy for the streams made at construction (None: fresh OS entropy)."""
        return None if self.seed is None else [self.seed]

    def update(self) -> list[int] | None:
        """New entropy when the streams must be reseeded before the next draw, else None."""
        info = get_worker_info()
        if info is not None:
            key = ("worker", int(info.seed))
        elif self.seed is None:
            key = ("main", int(torch.initial_seed()))
        else:
            return None
        if key == self._key:
            return None
        self._key = key
        own = [] if self.seed is None else [self.seed]
        return [*own, key[1], int(getattr(rank_zero_only, "rank", 0) or 0)]
