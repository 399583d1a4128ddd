"""The training sampler: order, canvases and augmentation from (seed, epoch, position)."""

from __future__ import annotations

import torch
from lightning import LightningModule, seed_everything

from neo.data import DemoCocoDataModule
from neo.data.resumable import ResumableSampler
from tests.helpers.training import cpu_trainer, demo_data

SIZES = [(96, 160), (128, 224)]


def demo(**kwargs) -> DemoCocoDataModule:
    """Two canvases, no crop (so the padding around the content is the rounding alone)."""
    return demo_data(
        num_val=2,
        objects_per_image=(1, 2),
        size_range=(0.15, 0.4),
        train_sizes=SIZES,
        crop_prob=0.0,
        **kwargs,
    )


class BatchRecorder(LightningModule):
    """Records each training batch: canvas, padding around the content, and a pixel checksum."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.canvases: list[tuple[int, int]] = []
        self.padding: list[tuple[float, float]] = []
        self.checksums: list[int] = []

    def training_step(self, batch, batch_idx):
        images, targets = batch
        height, width = images.shape[-2:]
        self.canvases.append((height, width))
        self.checksums.append(int(images.long().sum()) + 7 * int(images[:, :, ::7, ::5].sum()))
        for target in targets:  # no crop: the content is the whole image, scaled
            content_h = float(target["orig_size"][0] * target["scale"][1])
            content_w = float(target["orig_size"][1] * target["scale"][0].abs())
            self.padding.append((height - content_h, width - content_w))
        return (self.weight**2).sum() + 1.0

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit_and_record(seed: int, num_workers: int = 0, **kwargs) -> BatchRecorder:
    seed_everything(seed)
    model = BatchRecorder()
    data = demo(num_workers=num_workers, persistent_workers=False, **kwargs)
    cpu_trainer(max_epochs=2).fit(model, data)
    return model


def test_every_batch_has_one_canvas_and_only_the_rounding_as_padding():
    model = fit_and_record(seed=0)
    assert len(model.canvases) == 8  # 4 batches of 2, 2 epochs
    assert set(model.canvases) == set(SIZES)  # both sizes drawn
    assert all(0 <= rows < 32 and 0 <= cols < 32 for rows, cols in model.padding)


def test_batches_follow_the_seed_and_not_the_workers():
    first = fit_and_record(seed=3, num_workers=1)
    again = fit_and_record(seed=3)
    assert (again.canvases, again.checksums) == (first.canvases, first.checksums)
    assert first.checksums[:4] != first.checksums[4:]  # the epochs differ
    assert all(fit_and_record(seed=s).checksums != first.checksums for s in (4, 5))


def test_the_sampler_is_kept_under_ddp_and_shares_the_epoch():
    ranks = [ResumableSampler(8, 2, seed=0, num_replicas=2, rank=r, canvases=SIZES) for r in (0, 1)]
    keys = [[k for batch in s.batches(1) for k in batch] for s in ranks]
    assert sorted(k.index for rank in keys for k in rank) == list(range(8))  # each once
    assert [k.canvas for k in keys[0]][::2] == [k.canvas for k in keys[1]][::2]  # same per batch
    assert len({k.entropy for rank in keys for k in rank}) == 8  # every sample its own seed
    assert isinstance(ranks[0], torch.utils.data.DistributedSampler)  # Lightning keeps it


def test_a_loaded_position_skips_the_trained_batches_once():
    sampler = ResumableSampler(10, 2, seed=5)
    sampler.set_epoch(3)
    whole = list(sampler)
    sampler.load_state_dict({"seed": 5, "epoch": 3, "batches_trained": 2})
    assert list(sampler) == whole[4:]
    assert list(sampler) == whole  # the next pass over the epoch is whole again
    sampler.load_state_dict({"seed": 5, "epoch": 3, "batches_trained": 2})
    sampler.set_epoch(4)  # another epoch starts: the resume point does not apply
    assert len(list(sampler)) == 10
    assert sampler.state_dict() == {"seed": 5, "epoch": 4, "batches_trained": 0}
