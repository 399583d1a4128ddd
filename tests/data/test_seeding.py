"""Augmentation streams: reproducible from the run seed, distinct per worker and per epoch."""

from __future__ import annotations

import numpy as np
import torch
from lightning import LightningModule, seed_everything
from torch.utils.data import DataLoader, Dataset

from neo.data import DemoCocoDataModule
from neo.data.spectrogram_dataset import SquareResize
from tests.helpers.training import cpu_trainer, demo_data


def demo(**kwargs) -> DemoCocoDataModule:
    """The data of ``tests/configs/tiny_faster_rcnn.yaml``, loaded by one worker."""
    return demo_data(num_workers=1, persistent_workers=False, **kwargs)


class TinyDetector(LightningModule):
    """A few weights trained on the augmented pixels and boxes: they record the augmentation."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def training_step(self, batch, batch_idx):
        images, targets = batch
        features = self.conv(images.float() / 255).mean(dim=(2, 3))
        boxes = torch.stack([t["boxes"].mean(0) / 160 for t in targets])
        return ((features - boxes) ** 2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def fit_weights(seed: int) -> dict[str, torch.Tensor]:
    seed_everything(seed)
    model = TinyDetector()
    cpu_trainer(max_epochs=1).fit(model, demo())
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_two_fits_with_the_same_seed_give_the_same_weights():
    first, second, other = fit_weights(0), fit_weights(0), fit_weights(1)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def first_batch(seed: int) -> torch.Tensor:
    seed_everything(seed)
    dm = demo(batch_size=4)
    dm.setup("fit")
    loader = dm.train_dataloader()
    loader.sampler.generator = torch.Generator().manual_seed(0)  # same images, same order
    images, _ = next(iter(loader))
    return images


def test_the_run_seed_drives_the_augmentation_in_workers():
    reference = first_batch(0)
    assert torch.equal(first_batch(0), reference)
    assert not torch.equal(first_batch(1), reference)


class Flips(Dataset):
    def __init__(self, transform: SquareResize) -> None:
        self.transform = transform
        self.image = np.zeros((32, 48, 3), np.uint8)

    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> tuple[int, bool]:
        sample = self.transform(self.image, np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
        return torch.utils.data.get_worker_info().id, sample.scale[0] < 0


def flip_streams(loader: DataLoader) -> dict[int, list[bool]]:
    streams: dict[int, list[bool]] = {0: [], 1: []}
    for worker, flipped in loader:
        streams[int(worker)].append(bool(flipped))
    return streams


def test_spectrogram_flips_differ_between_workers_and_epochs():
    loader = DataLoader(
        Flips(SquareResize(32, time_flip_prob=0.5, seed=0)),
        batch_size=None,
        num_workers=2,
        persistent_workers=False,
        generator=torch.Generator().manual_seed(0),
        multiprocessing_context="fork",
    )
    epoch1, epoch2 = flip_streams(loader), flip_streams(loader)
    assert len(epoch1[0]) == len(epoch1[1]) == 8
    assert epoch1[0] != epoch1[1]
    assert epoch1 != epoch2
