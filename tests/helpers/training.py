"""For tests that fit or build tiny models in-process: a quiet CPU trainer, tiny settings."""

from __future__ import annotations

from typing import Any

from lightning import Trainer


def cpu_trainer(**overrides: Any) -> Trainer:
    """A CPU trainer with no logger, checkpoints, progress bar, summary or validation."""
    settings: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "limit_val_batches": 0,
        "num_sanity_val_steps": 0,
    }
    return Trainer(**{**settings, **overrides})


# A narrow RT-DETR-R18 (random weights) for tests of shapes, export and the inference contract.
TINY_RTDETR = dict(
    variant="r18",
    num_queries=20,
    num_top_queries=25,
    hidden_dim=32,
    nhead=4,
    num_decoder_layers=1,
    decoder_ffn_dim=64,
    encoder_ffn_dim=64,
    num_denoising=10,
)


def demo_data(**overrides: Any) -> Any:
    """The demo data of ``tests/configs/tiny_faster_rcnn.yaml`` (8 + 5 images of 90x160)."""
    from neo.data import DemoCocoDataModule

    settings = {
        "num_train": 8,
        "num_val": 5,
        "image_height": 90,
        "image_width": 160,
        "size_range": (0.15, 0.5),
        "objects_per_image": (1, 3),
        "train_sizes": [(96, 160)],
        "eval_size": (96, 160),
        "batch_size": 2,
        "num_workers": 0,
        **overrides,
    }
    return DemoCocoDataModule(**settings)
