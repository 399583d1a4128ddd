"""P x K batches for metric learning: P distinct identities with K images each."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch.distributed as dist
from lightning.fabric.utilities.rank_zero import rank_zero_warn
from torch.utils.data import Sampler


def _world(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """(num_replicas, rank): the given values, else torch.distributed's, else a single process."""
    initialised = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if initialised else 1
    if rank is None:
        rank = dist.get_rank() if initialised else 0
    if num_replicas < 1 or not 0 <= rank < num_replicas:
        raise ValueError(
            f"IdentityBatchSampler: rank {rank} is not in [0, num_replicas={num_replicas})"
        )
    return int(num_replicas), int(rank)


class IdentityBatchSampler(Sampler[list[int]]):
    """Batches of ``identities_per_batch`` (P) distinct identities x ``images_per_identity`` (K).

    Each epoch, every identity's indices are shuffled and cut into groups of K (a last group
    shorter than K is left out that epoch; an identity with fewer than K images gives one group
    drawn with replacement). Batches are then formed one at a time from P distinct identities that
    still have groups, drawn with probability proportional to their groups left (so identities
    with many images are not left over at the end), and the batch order is shuffled. When fewer
    than P identities have groups left, the remaining groups form one smaller last batch, kept
    only when ``drop_last`` is False.

    Everything is drawn from ``(seed, epoch)``: the same on every rank. With several ranks
    (torch.distributed initialised, or ``num_replicas``/``rank`` given) rank ``r`` takes batches
    ``r, r + R, r + 2R, ...`` of the epoch's list, which is first cut (``drop_last``) or wrapped
    around (otherwise) to a multiple of R, so that every rank gets the same number of batches.

    Samples with a negative label (unknown identities, negatives) are never drawn.

    Args:
        labels: identity label of each dataset index.
        identities_per_batch: P, distinct identities per batch.
        images_per_identity: K, images of each identity per batch.
        seed: seed of the draws.
        drop_last: drop the smaller last batch (and cut the batch list instead of wrapping it
            around to share it evenly among ranks).
        num_replicas: number of ranks; None takes torch.distributed's world size (else 1).
        rank: this rank; None takes torch.distributed's rank (else 0).

    Raises:
        ValueError: when P or K is < 1, or fewer than P identities have a label >= 0.
    """

    def __init__(
        self,
        labels: Sequence[int],
        identities_per_batch: int = 16,
        images_per_identity: int = 4,
        seed: int = 0,
        drop_last: bool = True,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        if identities_per_batch < 1 or images_per_identity < 1:
            raise ValueError(
                "IdentityBatchSampler: identities_per_batch and images_per_identity must be >= 1, "
                f"got {identities_per_batch} and {images_per_identity}"
            )
        self.identities_per_batch = int(identities_per_batch)
        self.images_per_identity = int(images_per_identity)
        self.seed = int(seed)
        self.drop_last = drop_last
        self.num_replicas, self.rank = _world(num_replicas, rank)
        self.epoch = 0
        by_identity: dict[int, list[int]] = {}
        for index, label in enumerate(labels):
            if int(label) >= 0:
                by_identity.setdefault(int(label), []).append(index)
        self.identities = sorted(by_identity)
        self._indices = [np.asarray(by_identity[i], dtype=np.int64) for i in self.identities]
        if len(self.identities) < self.identities_per_batch:
            raise ValueError(
                f"IdentityBatchSampler: {len(self.identities)} identities with a label >= 0, "
                f"fewer than identities_per_batch={self.identities_per_batch}; lower "
                "identities_per_batch or add identities"
            )
        few = sum(len(ix) < self.images_per_identity for ix in self._indices)
        if few:
            rank_zero_warn(
                f"IdentityBatchSampler: {few} identities have fewer than "
                f"{self.images_per_identity} images; sampled with replacement"
            )
        self._cached_epoch: int | None = None
        self._cached_batches: list[list[int]] = []

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch, which with the seed decides the draws.

        Args:
            epoch: epoch number.
        """
        self.epoch = int(epoch)

    def _groups(self, rng: np.random.Generator) -> list[list[np.ndarray]]:
        """Each identity's shuffled indices in groups of K."""
        k = self.images_per_identity
        groups = []
        for indices in self._indices:
            if len(indices) < k:
                groups.append([rng.choice(indices, size=k, replace=True)])
            else:
                shuffled = rng.permutation(indices)
                groups.append([shuffled[s : s + k] for s in range(0, len(shuffled) - k + 1, k)])
        return groups

    def _epoch_batches(self) -> list[list[int]]:
        """All ranks' batches of the current epoch, in order."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch]))
        groups = self._groups(rng)
        left = np.array([len(g) for g in groups], dtype=np.int64)
        p = self.identities_per_batch
        batches: list[list[int]] = []
        while np.count_nonzero(left) >= p:
            active = np.flatnonzero(left)
            weights = left[active] / left[active].sum()
            chosen = rng.choice(active, size=p, replace=False, p=weights)
            batch = []
            for identity in chosen:
                left[identity] -= 1
                batch.extend(groups[identity][left[identity]].tolist())
            batches.append(batch)
        if not self.drop_last and left.any():
            batch = []
            for identity in np.flatnonzero(left):
                for group in groups[identity][: left[identity]]:
                    batch.extend(group.tolist())
            batches.append(batch)
        return [batches[i] for i in rng.permutation(len(batches))]

    def _rank_batches(self) -> list[list[int]]:
        """This rank's batches of the current epoch (computed once per epoch)."""
        if self._cached_epoch == self.epoch:
            return self._cached_batches
        batches = self._epoch_batches()
        replicas = self.num_replicas
        if self.drop_last:
            batches = batches[: len(batches) - len(batches) % replicas]
        elif batches and len(batches) % replicas:
            extra = replicas - len(batches) % replicas
            batches = batches + [batches[i % len(batches)] for i in range(extra)]
        self._cached_batches = batches[self.rank :: replicas]
        self._cached_epoch = self.epoch
        return self._cached_batches

    def batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches of ``epoch`` (the epoch becomes the current one)."""
        self.set_epoch(epoch)
        return [list(batch) for batch in self._rank_batches()]

    def __iter__(self) -> Iterator[list[int]]:
        """Yields this rank's batches of the current epoch."""
        yield from (list(batch) for batch in self._rank_batches())

    def __len__(self) -> int:
        """Number of batches this rank yields in the current epoch."""
        return len(self._rank_batches())
