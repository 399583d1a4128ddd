"""Multi-scale training: one canvas per batch, reproducible, kept under DDP's sampler injection."""

from __future__ import annotations

import torch
from lightning import LightningModule, seed_everything
from lightning.fabric.utilities.data import _replace_dunder_methods
from lightning.pytorch.trainer.states import RunningStage
from lightning.pytorch.utilities.data import _update_dataloader
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler

from neo.data import DemoCocoDataModule
from neo.data.multi_scale import MultiScaleBatchSampler
from tests.helpers.training import cpu_trainer

SIZES = [(96, 160), (128, 224)]


def demo(**kwargs) -> DemoCocoDataModule:
    settings = {
        "num_train": 8,
        "num_val": 2,
        "image_height": 90,
        "image_width": 160,
        "objects_per_image": (1, 2),
        "size_range": (0.15, 0.4),
        "train_sizes": SIZES,
        "eval_size": (96, 160),
        "crop_prob": 0.0,
        "batch_size": 2,
        "num_workers": 0,
        **kwargs,
    }
    return DemoCocoDataModule(**settings)


class BatchRecorder(LightningModule):
    """Records each training batch's canvas and the padding around each image's content."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.canvases: list[tuple[int, int]] = []
        self.padding: list[tuple[float, float]] = []

    def training_step(self, batch, batch_idx):
        images, targets = batch
        height, width = images.shape[-2:]
        self.canvases.append((height, width))
        for target in targets:  # no crop: the content is the whole image, scaled
            content_h = float(target["orig_size"][0] * target["scale"][1])
            content_w = float(target["orig_size"][1] * target["scale"][0].abs())
            self.padding.append((height - content_h, width - content_w))
        return (self.weight**2).sum() + 1.0

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit_and_record(seed: int, num_workers: int = 0) -> BatchRecorder:
    seed_everything(seed)
    model = BatchRecorder()
    cpu_trainer(max_epochs=2).fit(model, demo(num_workers=num_workers, persistent_workers=False))
    return model


def test_every_batch_has_one_canvas_and_only_the_rounding_as_padding():
    model = fit_and_record(seed=0)
    assert len(model.canvases) == 8  # 4 batches of 2, 2 epochs
    assert set(model.canvases) == set(SIZES)  # both sizes drawn
    assert all(0 <= rows < 32 and 0 <= cols < 32 for rows, cols in model.padding)


def test_canvases_follow_the_seed():
    first = fit_and_record(seed=3, num_workers=1).canvases
    assert fit_and_record(seed=3).canvases == first
    assert any(fit_and_record(seed=s).canvases != first for s in (4, 5))


def test_sizes_survive_lightnings_distributed_sampler_injection():
    dm = demo()
    dm.setup("fit")
    with _replace_dunder_methods(DataLoader, "dataset"), _replace_dunder_methods(BatchSampler):
        loader = dm.train_dataloader()  # created as Lightning creates it in the trainer
    sampler = DistributedSampler(loader.dataset, num_replicas=2, rank=1, shuffle=True, seed=0)
    ddp = _update_dataloader(loader, sampler, mode=RunningStage.TRAINING)
    assert isinstance(ddp.batch_sampler, MultiScaleBatchSampler)
    assert ddp.batch_sampler.sampler is sampler and ddp.batch_sampler.sizes == SIZES
    images, targets = next(iter(ddp))
    assert tuple(images.shape[-2:]) in SIZES and len(targets) == 2
    batches = list(ddp.batch_sampler)
    assert sorted(i for batch in batches for i, _ in batch) == sorted(sampler)  # rank 1's half
    assert all(len({canvas for _, canvas in batch}) == 1 for batch in batches)
