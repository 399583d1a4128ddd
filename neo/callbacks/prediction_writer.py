"""Writes predictions as COCO result JSON and, optionally, rendered images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter

from neo.data.images import read_image
from neo.tasks.detection import coco_results
from neo.utils.atomic import write_json
from neo.utils.drawing import draw_detections


class CocoPredictionWriter(BasePredictionWriter):
    """Collects ``predict`` outputs into ``predictions.json`` (COCO results, original pixels).

    Each result carries ``image_id``, ``category_id``, ``bbox`` [x, y, w, h], ``score`` and, for
    image folders, ``file_name``.

    Args:
        output_dir: folder for ``predictions.json`` and rendered images (default: the run's
            ``predictions/`` folder, ``<log dir>/predictions``).
        render: also save each image with its detections drawn.
        render_score_threshold: minimum score of a drawn detection.
    """

    def __init__(
        self,
        output_dir: Path | None = None,
        render: bool = False,
        render_score_threshold: float = 0.3,
    ) -> None:
        super().__init__(write_interval="epoch")
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.render = render
        self.render_score_threshold = render_score_threshold

    def write_on_epoch_end(  # noqa: D102
        self, trainer: Trainer, pl_module: LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask
        output_dir = self.output_dir or Path(log_dir or trainer.default_root_dir) / "predictions"
        per_image = [item for batch in _flatten(predictions) for item in batch]
        gathered = per_image
        if trainer.world_size > 1:
            import torch.distributed as dist

            parts: list[Any] = [None] * trainer.world_size
            dist.all_gather_object(parts, per_image)
            gathered = [item for part in parts for item in part]
        if not trainer.is_global_zero:
            return
        unique = {item["image_id"]: item for item in gathered}
        results = []
        for item in unique.values():
            for result in coco_results(
                item["image_id"], item["boxes"], item["scores"], item["category_ids"]
            ):
                if item.get("file_name"):
                    result["file_name"] = item["file_name"]
                results.append(result)
        write_json(output_dir / "predictions.json", results)
        if self.render:
            self._render(unique.values(), pl_module, output_dir / "rendered")
        print(
            f"wrote {len(results)} detections for {len(unique)} images to "
            f"{output_dir / 'predictions.json'}"
        )

    def _render(self, items: Any, pl_module: LightningModule, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        names = list(getattr(pl_module, "class_names", []))
        for item in items:
            if not item.get("file_name"):
                continue
            keep = item["scores"] >= self.render_score_threshold
            picture = draw_detections(
                read_image(Path(item["file_name"])),
                item["boxes"][keep].numpy(),
                item["labels"][keep].tolist(),
                names,
                item["scores"][keep].tolist(),
            )
            out = folder / Path(item["file_name"]).name
            cv2.imwrite(str(out), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))


def _flatten(predictions: Any) -> list[Any]:
    if (
        predictions
        and isinstance(predictions[0], list)
        and predictions[0]
        and isinstance(predictions[0][0], list)
    ):
        return [batch for loader in predictions for batch in loader]
    return list(predictions)
