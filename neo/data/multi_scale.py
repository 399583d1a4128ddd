"""Multi-scale training with one canvas per batch.

A canvas drawn per sample makes collation pad every batch to its largest member, so most batches
run at the largest size with much of the tensor padding. As in the official RT-DETR, the size is
drawn once per batch instead: :class:`MultiScaleBatchSampler` yields ``(index, canvas)`` pairs
and the dataset resizes every sample of the batch to that canvas.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import torch
from torch.utils.data import BatchSampler, Sampler


class MultiScaleBatchSampler(BatchSampler):
    """Batches of ``(index, (h, w))`` pairs that share one canvas drawn from ``sizes``.

    The canvases of an epoch come from a generator seeded by one draw from torch's global
    generator when iteration starts (as :class:`~torch.utils.data.RandomSampler` does), so they
    follow ``seed_everything``, differ between epochs, and agree between DDP ranks seeded alike.
    Lightning replaces ``sampler`` by a ``DistributedSampler`` under DDP; ``sizes`` is kept.

    Args:
        sampler: the index sampler (random for training).
        batch_size: samples per batch.
        drop_last: drop the last incomplete batch.
        sizes: canvas (h, w) pairs to draw from.
    """

    def __init__(
        self,
        sampler: Sampler[int] | Iterable[int],
        batch_size: int,
        drop_last: bool,
        sizes: Sequence[tuple[int, int]],
    ) -> None:
        super().__init__(sampler, batch_size, drop_last)
        if not len(sizes):
            raise ValueError("MultiScaleBatchSampler: sizes is empty")
        self.sizes = [(int(h), int(w)) for h, w in sizes]

    def __iter__(self) -> Iterator[list[tuple[int, tuple[int, int]]]]:
        generator = torch.Generator()
        generator.manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
        for batch in super().__iter__():
            canvas = self.sizes[int(torch.randint(len(self.sizes), (), generator=generator))]
            yield [(index, canvas) for index in batch]
