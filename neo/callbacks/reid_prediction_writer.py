"""Writes ReID predictions: every box's embedding and its identity (or -1 for unknown)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter

from neo.utils.atomic import atomic_path

COLUMNS = ("row", "kind", "quarter", "angle", "session", "frame", "x", "y", "w", "h")


class ReIDPredictionWriter(BasePredictionWriter):
    """Collects ``predict`` outputs into ``predictions.csv`` and ``embeddings.npy``.

    ``predictions.csv`` has one row per box in the data module's prediction order: the box's
    meta fields, ``label_id`` (the predicted identity, -1 for unknown) and ``score`` (cosine
    similarity to the nearest identity prototype). Row ``i`` of ``embeddings.npy`` (float32,
    L2-normalised) is the embedding of CSV row ``i``.

    Args:
        output_dir: output folder (default: ``<log dir>/predictions``).
    """

    def __init__(self, output_dir: Path | None = None) -> None:
        super().__init__(write_interval="epoch")
        self.output_dir = None if output_dir is None else Path(output_dir)

    def write_on_epoch_end(  # noqa: D102
        self, trainer: Trainer, pl_module: LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        log_dir = trainer.log_dir
        output_dir = self.output_dir or Path(log_dir or trainer.default_root_dir) / "predictions"
        batches = [b for b in predictions if isinstance(b, dict)]
        merged = {k: torch.cat([b[k] for b in batches]) for k in batches[0]} if batches else {}
        if trainer.world_size > 1:
            import torch.distributed as dist

            parts: list[Any] = [None] * trainer.world_size
            dist.all_gather_object(parts, merged)
            merged = {k: torch.cat([p[k] for p in parts if p]) for k in merged}
        if not trainer.is_global_zero or not merged:
            return
        records = trainer.datamodule.prediction_records()
        order = {int(i): n for n, i in enumerate(merged["indices"].tolist())}
        picks = [order[i] for i in sorted(order)]
        embeddings = merged["embeddings"][picks].numpy().astype(np.float32)
        identities = merged["identities"][picks].tolist()
        scores = merged["scores"][picks].tolist()
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([*COLUMNS, "crop_path", "label_id", "score"])
        for index, identity, score in zip(sorted(order), identities, scores):
            record = records[index]
            fields = [getattr(record, c) for c in COLUMNS]
            writer.writerow([*fields, record.crop_path, int(identity), f"{score:.5f}"])
        with atomic_path(output_dir / "predictions.csv") as tmp:
            tmp.write_text(buffer.getvalue())
        with atomic_path(output_dir / "embeddings.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, embeddings)
        unknown = sum(i == -1 for i in identities)
        print(
            f"identified {len(identities)} boxes ({unknown} unknown) -> "
            f"{output_dir / 'predictions.csv'}, embeddings in {output_dir / 'embeddings.npy'}"
        )
