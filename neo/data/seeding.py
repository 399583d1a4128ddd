"""Seeds of the augmentation streams, from the run seed.

Training samples come as :class:`SampleKey` items from
:class:`~neo.data.resumable.ResumableSampler`: each carries the entropy of its own augmentation
(run seed, epoch, rank, batch, slot), which the dataset puts in effect with :func:`keyed` while it
transforms the sample. What a sample draws is then independent of workers and of restarts, so a
resumed run draws exactly what an uninterrupted one does.

Items that are plain indices (datasets used outside neo's training loader) fall back to streams.
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

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from torch.utils.data import get_worker_info


def run_seed() -> int:
    """The run's seed (``seed_everything``'s value, torch's initial seed), as a generator seed."""
    return int(torch.initial_seed()) % 2**63


@dataclass(frozen=True)
class SampleKey:
    """One training sample as the sampler asks for it.

    Attributes:
        index: the dataset index.
        entropy: seeds this sample's augmentation.
        canvas: the batch's (h, w) canvas (multi-scale training), or None.
    """

    index: int
    entropy: tuple[int, ...]
    canvas: tuple[int, int] | None = None


_SAMPLE_ENTROPY: ContextVar[tuple[int, ...] | None] = ContextVar("sample_entropy", default=None)


@contextmanager
def keyed(item: int | SampleKey) -> Iterator[int]:
    """The dataset index of ``item``; a key's entropy seeds the augmentation drawn meanwhile."""
    if not isinstance(item, SampleKey):
        yield int(item)
        return
    token = _SAMPLE_ENTROPY.set(item.entropy)
    try:
        yield item.index
    finally:
        _SAMPLE_ENTROPY.reset(token)


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
        own = [] if self.seed is None else [self.seed]
        sample = _SAMPLE_ENTROPY.get()
        if sample is not None:
            self._key = None  # a later unkeyed draw starts its stream afresh
            return [*own, *sample]
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
        return [*own, key[1], int(getattr(rank_zero_only, "rank", 0) or 0)]
