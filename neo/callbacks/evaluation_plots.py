"""Per-class precision–recall curves and a confusion matrix after each validation."""

from __future__ import annotations

from pathlib import Path

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger


class EvaluationPlots(Callback):
    """Draws what the last validation pass measured, for a detection task.

    After each validation (global rank zero), the task's ``last_evaluation`` (the COCO
    evaluation's per-class precision at IoU 0.5 and the evaluated detections) becomes
    ``<log_dir>/plots/epoch_<N>/pr_curves.png`` and ``confusion_matrix.png``
    (:func:`neo.metrics.confusion.confusion_matrix`), which also go to TensorBoard and W&B when
    those loggers are active.

    Args:
        score_threshold: detections below this score are left out of the confusion matrix.
        iou_threshold: the smallest IoU of a match in the confusion matrix.
        every_n_epochs: draw after the validations of every n-th epoch (and the last).
    """

    def __init__(
        self, score_threshold: float = 0.25, iou_threshold: float = 0.5, every_n_epochs: int = 1
    ) -> None:
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.every_n_epochs = max(1, int(every_n_epochs))
        self.written: list[Path] = []

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask
        details = getattr(pl_module, "last_evaluation", None)
        epoch = trainer.current_epoch
        last = trainer.max_epochs is not None and epoch + 1 >= trainer.max_epochs
        if (
            details is None
            or trainer.sanity_checking
            or not trainer.is_global_zero
            or not (last or epoch % self.every_n_epochs == 0)
        ):
            return
        from neo.metrics.confusion import confusion_matrix
        from neo.utils.plots import confusion_figure, precision_recall_figure, save_figure

        names_by_id = {int(c["id"]): str(c["name"]) for c in details.ground_truth["categories"]}
        pr_names = [names_by_id.get(c, str(c)) for c in details.category_ids]
        matrix, matrix_ids = confusion_matrix(
            details.ground_truth,
            details.detections,
            details.image_ids,
            self.score_threshold,
            self.iou_threshold,
        )
        figures = {
            "pr_curves": precision_recall_figure(
                details.recall,
                details.precision,
                pr_names,
                f"epoch {epoch}: precision-recall at IoU 0.5",
            ),
            "confusion_matrix": confusion_figure(
                matrix,
                [names_by_id.get(c, str(c)) for c in matrix_ids],
                f"epoch {epoch}: score >= {self.score_threshold}, IoU >= {self.iou_threshold}",
            ),
        }
        folder = Path(log_dir or trainer.default_root_dir) / "plots" / f"epoch_{epoch:03d}"
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                for name, figure in figures.items():
                    logger.experiment.add_figure(f"val/{name}", figure, trainer.global_step, False)
        paths = {
            name: save_figure(figure, folder / f"{name}.png") for name, figure in figures.items()
        }
        self.written = list(paths.values())
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(
                    "val/plots", [str(p) for p in paths.values()], step=trainer.global_step
                )
