"""Training order that a run killed mid-epoch resumes exactly.

Everything a training epoch draws on the data side is a pure function of the run seed, the epoch
and the position in the epoch: the order of the samples, the canvas of each batch (multi-scale
training) and the seed of each sample's augmentation (:class:`~neo.data.seeding.SampleKey`). A
checkpoint therefore only needs where the training loop stood, which the data module stores
(:class:`ResumableTrainingData`, restored before the training loader is built, since the
learning-rate schedule asks for the loader before Lightning restores the loops); the resumed run
skips the batches already trained without loading them. The number of DataLoader workers and their
restarts do not change what is drawn.

Under DDP the sampler shards the epoch itself (it is a ``DistributedSampler``, so Lightning keeps
it), so every rank draws from the same seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, DistributedSampler

from neo.data.seeding import SampleKey, run_seed

EpochBatches = Callable[[int], list[list[int]]]


def loop_position(trainer: Any) -> tuple[int, int]:
    """Where the training loop stands: ``(epoch, batches of it already trained)``.

    A finished epoch counts as the start of the next one.
    """
    progress = trainer.fit_loop.epoch_loop.batch_progress
    if progress.is_last_batch:
        return int(trainer.current_epoch) + 1, 0
    return int(trainer.current_epoch), int(progress.current.ready)


class ResumableSampler(DistributedSampler):
    """Sample keys of this rank's training batches, drawn from ``(seed, epoch)``.

    By default an epoch is a permutation of the dataset cut into ``batch_size`` batches after the
    ranks' shares are taken (as ``DistributedSampler`` does); ``epoch_batches`` replaces that
    with any other batching (e.g. identity-balanced P×K batches). The DataLoader batches the keys
    with the same ``batch_size``.

    Args:
        dataset_size: number of samples.
        batch_size: samples per batch.
        seed: seed of the order, the canvases and the augmentation.
        num_replicas: number of ranks.
        rank: this rank.
        drop_last: drop this rank's last incomplete batch (default batching only).
        canvases: (h, w) canvases drawn once per batch; None leaves the size to the transform.
        epoch_batches: ``epoch -> this rank's batches of dataset indices``; None: the default.
        position: where the training loop stands, ``(epoch, batches trained)``
            (:func:`loop_position`), recorded in checkpoints; None records the epoch's start.
    """

    def __init__(
        self,
        dataset_size: int,
        batch_size: int,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = True,
        canvases: Sequence[tuple[int, int]] | None = None,
        epoch_batches: EpochBatches | None = None,
        position: Callable[[], tuple[int, int]] | None = None,
    ) -> None:
        super().__init__(
            range(dataset_size), num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed
        )
        if batch_size < 1:
            raise ValueError(f"ResumableSampler: batch_size must be >= 1, got {batch_size}")
        if canvases is not None and not len(canvases):
            raise ValueError("ResumableSampler: canvases is empty")
        self.batch_size = int(batch_size)
        self.drop_last_batch = drop_last
        self.canvases = None if canvases is None else [(int(h), int(w)) for h, w in canvases]
        self.epoch_batches = epoch_batches or self._permuted_batches
        self.position = position
        self._start = 0

    def _permuted_batches(self, epoch: int) -> list[list[int]]:
        current, self.epoch = self.epoch, epoch
        indices = list(super().__iter__())  # DistributedSampler's permutation and share
        self.epoch = current
        size = self.batch_size
        batches = [indices[i : i + size] for i in range(0, len(indices), size)]
        if self.drop_last_batch and batches and len(batches[-1]) < size:
            batches.pop()
        return batches

    def set_epoch(self, epoch: int) -> None:
        """Starts ``epoch`` (Lightning calls this); a resume point in another epoch is dropped."""
        if int(epoch) != self.epoch:
            self._start = 0
        self.epoch = int(epoch)

    def batches(self, epoch: int) -> list[list[SampleKey]]:
        """This rank's batches of sample keys in ``epoch``, from its first batch on."""
        keyed = []
        for number, batch in enumerate(self.epoch_batches(epoch)):
            canvas = None
            if self.canvases is not None:
                rng = np.random.default_rng([self.seed, epoch, number])
                canvas = self.canvases[int(rng.integers(len(self.canvases)))]
            keyed.append(
                [
                    SampleKey(int(index), (self.seed, epoch, self.rank, number, slot), canvas)
                    for slot, index in enumerate(batch)
                ]
            )
        return keyed

    def __iter__(self) -> Iterator[SampleKey]:
        start, self._start = self._start, 0
        for batch in self.batches(self.epoch)[start:]:
            yield from batch

    def __len__(self) -> int:
        return sum(len(batch) for batch in self.epoch_batches(self.epoch))

    def state_dict(self) -> dict[str, int]:
        """The seed and the loop's position, for the checkpoint."""
        epoch, trained = self.position() if self.position is not None else (self.epoch, 0)
        return {"seed": int(self.seed), "epoch": int(epoch), "batches_trained": int(trained)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continues from a checkpoint's position: the next iteration skips the trained batches."""
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self._start = int(state["batches_trained"])


class ResumableDataLoader(DataLoader):
    """A DataLoader over a :class:`ResumableSampler` whose position Lightning checkpoints."""

    def state_dict(self) -> dict[str, int]:
        """The sampler's state (Lightning stores it in the checkpoint)."""
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restores the sampler's state (Lightning calls this when resuming)."""
        self.sampler.load_state_dict(state)


def resumable_loader(
    dataset: Any,
    batch_size: int,
    trainer: Any,
    canvases: Sequence[tuple[int, int]] | None = None,
    epoch_batches: EpochBatches | None = None,
    **loader_options: Any,
) -> ResumableDataLoader:
    """The training loader of a neo data module.

    Args:
        dataset: the training dataset (its items accept :class:`~neo.data.seeding.SampleKey`).
        batch_size: samples per batch.
        trainer: the Lightning trainer (its rank, world size and loop position); None outside one.
        canvases: multi-scale canvases drawn per batch.
        epoch_batches: another batching than a permutation (see :class:`ResumableSampler`).
        **loader_options: further DataLoader arguments (workers, collate_fn, ...).
    """
    sampler = ResumableSampler(
        len(dataset),
        batch_size,
        seed=run_seed(),
        num_replicas=trainer.world_size if trainer is not None else 1,
        rank=trainer.global_rank if trainer is not None else 0,
        drop_last=len(dataset) > batch_size,
        canvases=canvases,
        epoch_batches=epoch_batches,
        position=(lambda: loop_position(trainer)) if trainer is not None else None,
    )
    return ResumableDataLoader(dataset, batch_size=batch_size, sampler=sampler, **loader_options)


class ResumableTrainingData:
    """Data-module mixin: the training loader's position is saved in checkpoints and resumed.

    Lightning restores a data module's state before it asks for the training loader, so
    :meth:`resumable_train_loader` builds the loader already at the checkpoint's position.
    """

    _train_loader: ResumableDataLoader | None = None
    _resume_position: dict[str, int] | None = None

    def resumable_train_loader(
        self, dataset: Any, batch_size: int, **options: Any
    ) -> ResumableDataLoader:
        """:func:`resumable_loader` for this module's trainer, at a restored position if any."""
        loader = resumable_loader(dataset, batch_size, getattr(self, "trainer", None), **options)
        if self._resume_position is not None:
            loader.load_state_dict(self._resume_position)
            self._resume_position = None
        self._train_loader = loader
        return loader

    def state_dict(self) -> dict[str, Any]:
        """Where training stands (Lightning stores it in checkpoints)."""
        if self._train_loader is None:
            return {}
        return {"training_position": self._train_loader.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Keeps a checkpoint's position for the next training loader."""
        self._resume_position = state.get("training_position")
