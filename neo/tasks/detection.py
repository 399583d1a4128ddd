"""The LightningModule base every detector shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from lightning import LightningModule
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor, nn
from torch.optim.lr_scheduler import ChainedScheduler, LinearLR, MultiStepLR
from torchvision.ops.misc import FrozenBatchNorm2d

from neo.inference.spec import SPEC_KEY, InferenceSpec
from neo.metrics.coco import CocoEvaluator, EvaluationDetails
from neo.utils.random_state import resume_random_state, save_random_state

Target = dict[str, Any]
Detections = list[dict[str, Tensor]]
NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, FrozenBatchNorm2d)


NONFINITE_KEY = "neo_nonfinite_in_a_row"


class NonFiniteLossError(RuntimeError):
    """Training produced a non-finite loss too many steps in a row."""


def to_original_pixels(boxes: Tensor, target: Target) -> Tensor:
    """Maps xyxy boxes from the network input back to the original image, clipped to it."""
    scale = target["scale"].to(boxes)
    offset = target["offset"].to(boxes)
    boxes = (boxes - offset.repeat(2)) / scale.repeat(2)
    height, width = (int(v) for v in target["orig_size"])
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    return boxes


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Puts ``module`` in eval mode and restores each submodule's own mode afterwards."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def pad_detections(detections: Detections, num_rows: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per-image detections (at most ``num_rows`` each) as the contract's padded tensors.

    Returns (B, N, 4) float boxes, (B, N) scores and (B, N) int64 labels with ``N = num_rows``;
    rows past an image's detections are zero boxes with score 0 and label -1. Only tensor
    operations whose sizes the tracer follows, so a traced or exported model keeps them dynamic.
    """
    boxes, scores, labels = [], [], []
    for det in detections:
        missing = num_rows - det["scores"].shape[0]
        boxes.append(F.pad(det["boxes"].float(), (0, 0, 0, missing)))
        scores.append(F.pad(det["scores"].float(), (0, missing)))
        labels.append(F.pad(det["labels"].long(), (0, missing), value=-1))
    return torch.stack(boxes), torch.stack(scores), torch.stack(labels)


def coco_results(
    image_id: int, boxes: Tensor, scores: Tensor, category_ids: list[int]
) -> list[dict[str, Any]]:
    """COCO result dicts (``bbox`` as [x, y, w, h]) for one image's xyxy boxes."""
    xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()
    return [
        {
            "image_id": int(image_id),
            "category_id": int(cid),
            "bbox": [round(v, 2) for v in box],
            "score": round(float(score), 5),
        }
        for box, score, cid in zip(xywh, scores.tolist(), category_ids)
    ]


class DetectionTask(LightningModule):
    """Optimisation, evaluation, logging and prediction shared by all detectors.

    Subclasses build ``self.model``, set ``backbone_prefix`` and implement :meth:`compute_losses`
    (training) and :meth:`run_model` (inference). Batches are ``(images, targets)``: uint8 images
    (B, 3, H, W) and targets with boxes in input pixels plus ``scale``/``offset``/``orig_size`` to
    map back. Calling the task (:meth:`forward`) is its inference contract; validation, test,
    prediction and every deployment path go through it.

    The optimiser and schedule arguments are declared here only; subclasses take them through
    ``**kwargs``.

    Args:
        num_classes: number of object classes (no background).
        lr: AdamW learning rate.
        backbone_lr: learning rate of the backbone (default: ``lr``).
        weight_decay: AdamW weight decay (none on norm layers and biases).
        betas: AdamW betas.
        warmup_steps: linear warm-up length in optimizer steps (overrides ``warmup_epochs``).
        warmup_epochs: linear warm-up length in epochs.
        milestones: epochs at which the learning rate is multiplied by ``gamma``.
        gamma: learning-rate decay factor at each milestone.
        max_nonfinite_steps: consecutive non-finite losses (each skipped) before training stops.
    """

    backbone_prefix = "model.backbone."
    size_divisor = 32
    # How ``neo export`` captures run_model: ``dynamo`` (torch.export; dynamic batch and size) or
    # ``torchscript`` (the tracer; per-image loops, as in torchvision's detectors, fix the batch).
    export_tracer = "dynamo"

    def __init__(
        self,
        num_classes: int,
        lr: float = 1e-4,
        backbone_lr: float | None = None,
        weight_decay: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        warmup_steps: int | None = None,
        warmup_epochs: float = 0.0,
        milestones: list[int] = [],  # noqa: B006
        gamma: float = 0.1,
        max_nonfinite_steps: int = 10,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.save_hyperparameters()
        self.num_classes = num_classes
        self.lr = lr
        ids = list(range(1, num_classes + 1))
        self.inference_spec = InferenceSpec(
            self.class_path(), ids, [str(i) for i in ids], size_divisor=self.size_divisor
        )
        self.evaluator: CocoEvaluator | None = None
        # the last validation/test pass's precision-recall and inputs (for plotting callbacks)
        self.last_evaluation: EvaluationDetails | None = None
        self._nonfinite_in_a_row = 0

    @classmethod
    def class_path(cls) -> str:
        """Import path of this task class, as the inference spec records it."""
        return f"{cls.__module__}.{cls.__qualname__}"

    @classmethod
    def without_initial_weights(cls, hparams: dict[str, Any]) -> dict[str, Any]:
        """``hparams`` with the arguments that only fetch starting weights switched off.

        A checkpoint supplies every weight, so :func:`neo.inference.load_detector` builds the
        task with these (same architecture, nothing downloaded or read besides the checkpoint).
        """
        return dict(hparams)

    def compute_losses(self, images: Tensor, targets: list[Target]) -> dict[str, Tensor]:
        """Weighted loss terms for a batch of float images in [0, 1]; their sum is optimised."""
        raise NotImplementedError

    def run_model(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The model and its post-processing on float images (B, 3, H, W) in [0, 1].

        Called in eval mode without gradients by :meth:`forward`, and traced as it is by
        ``neo export`` (so only operations the tracer of :attr:`export_tracer` follows). Pads the
        images bottom/right to a multiple of :attr:`size_divisor` (or lets the model do it) and
        returns the contract's tensors (see :meth:`forward`; :func:`pad_detections` builds them
        from per-image detections).
        """
        raise NotImplementedError

    @property
    def max_detections(self) -> int:
        """Rows of :meth:`forward`'s output per image (the most detections an image can get)."""
        raise NotImplementedError

    # ----------------------------------------------------------------------- inference
    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The inference contract: detections of images already at the network input size.

        Runs in eval mode without gradients, whatever mode the task is in.

        Args:
            images: uint8 (B, 3, H, W) RGB (float in [0, 1] is accepted too), already resized or
                letterboxed to the network input (see :attr:`inference_spec`).

        Returns:
            ``boxes`` (B, N, 4) float xyxy in input pixels, ``scores`` (B, N) and ``labels``
            (B, N) int64 training labels ``0..num_classes-1``, N = :attr:`max_detections`; rows
            past an image's detections are padding with score 0 and label -1.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        with torch.no_grad(), eval_mode(self):
            return self.run_model(self.to_float(images))

    def detect(self, images: Tensor) -> Detections:
        """Per-image view of :meth:`forward` without its padding rows.

        Returns:
            One dict per image: ``boxes`` (K, 4), ``scores`` (K,), ``labels`` (K,).
        """
        boxes, scores, labels = self(images)
        keep = labels >= 0
        return [
            {"boxes": b[k], "scores": s[k], "labels": lab[k]}
            for b, s, lab, k in zip(boxes, scores, labels, keep)
        ]

    # ----------------------------------------------------------------------- classes
    @property
    def category_ids(self) -> list[int]:
        """Dataset category id of each training label (from the inference spec)."""
        return self.inference_spec.category_ids

    @category_ids.setter
    def category_ids(self, ids: list[int]) -> None:
        self.inference_spec = replace(self.inference_spec, category_ids=list(ids))

    @property
    def class_names(self) -> list[str]:
        """Name of each training label (from the inference spec)."""
        return self.inference_spec.class_names

    def setup(self, stage: str) -> None:
        """Takes the classes and the preprocessing from the data module when there is one."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if datamodule is not None:
            self.take_data_spec(datamodule)

    def take_data_spec(self, datamodule: Any) -> None:
        """Sets the inference spec's classes and preprocessing from ``datamodule``."""
        spec = self.inference_spec
        categories = getattr(datamodule, "categories", None)
        if categories:
            if len(categories) != self.num_classes:
                raise ValueError(
                    f"the data has {len(categories)} classes but the model was built for "
                    f"{self.num_classes}"
                )
            spec = replace(
                spec,
                category_ids=[int(c["id"]) for c in categories],
                class_names=[str(c["name"]) for c in categories],
            )
        if hasattr(datamodule, "inference_preprocessing"):
            pre = datamodule.inference_preprocessing()
            spec = replace(
                spec,
                input_size=pre.get("input_size"),
                resize=pre.get("resize", "letterbox"),
                spectrogram=pre.get("spectrogram"),
            )
        self.inference_spec = spec

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Stores the inference spec, the non-finite counter and the generators' states.

        The spec lets the checkpoint run without the training data; the rest lets a resumed fit
        go on exactly.
        """
        spec = replace(self.inference_spec, task_class=self.class_path())
        checkpoint[SPEC_KEY] = spec.to_dict()
        checkpoint[NONFINITE_KEY] = self._nonfinite_in_a_row
        save_random_state(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restores what :meth:`on_save_checkpoint` stored (the generators only to resume a fit)."""
        self._nonfinite_in_a_row = int(checkpoint.get(NONFINITE_KEY, 0))
        resume_random_state(self, checkpoint)
        if SPEC_KEY not in checkpoint:
            return
        spec = InferenceSpec.from_dict(checkpoint[SPEC_KEY])
        if spec.num_classes != self.num_classes:
            raise ValueError(
                f"the checkpoint's inference spec has {spec.num_classes} classes but the model "
                f"was built for {self.num_classes}"
            )
        self.inference_spec = spec

    # ----------------------------------------------------------------------- training
    @staticmethod
    def to_float(images: Tensor) -> Tensor:
        """uint8 images to float in [0, 1] (on the device, after the transfer)."""
        return images.float().div_(255.0) if images.dtype == torch.uint8 else images

    def _world_size(self) -> int:
        return self._trainer.world_size if self._trainer is not None else 1

    def training_step(self, batch: tuple[Tensor, list[Target]], batch_idx: int) -> Tensor | None:
        """One optimisation step; a non-finite loss is skipped and counted.

        In a single process the step is skipped (``None``). Under DDP the ranks decide together:
        if any rank's loss is non-finite, every rank returns a zero loss connected to all
        parameters, so the gradients all-reduced and stepped are zero on every rank.
        """
        images, targets = batch
        losses = self.compute_losses(self.to_float(images), targets)
        loss = sum(losses.values())
        finite = bool(torch.isfinite(loss.detach()))
        distributed = self._world_size() > 1
        if distributed:
            finite = self.trainer.strategy.reduce_boolean_decision(finite, all=True)
        if not finite:
            self._nonfinite_in_a_row += 1
            rank_zero_warn(
                f"non-finite loss at step {self.global_step}"
                f"{' on at least one rank' if distributed else ''} "
                f"({self._nonfinite_in_a_row} in a row): skipping the step"
            )
            if self._nonfinite_in_a_row >= self.hparams.max_nonfinite_steps:
                raise NonFiniteLossError(
                    f"loss was non-finite in {self._nonfinite_in_a_row} consecutive steps; lower "
                    "the learning rate, check the data with `neo data check`, or train in fp32/bf16"
                )
            if not distributed:
                return None
            return sum(p.sum() for p in self.parameters() if p.requires_grad) * 0.0
        self._nonfinite_in_a_row = 0
        batch_size = images.shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, batch_size=batch_size)
        return loss

    def parameter_groups(self) -> list[dict[str, Any]]:
        """AdamW groups: backbone vs rest, and no weight decay on norm layers and biases."""
        hp = self.hparams
        groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
        for module_name, module in self.named_modules():
            for name, param in module.named_parameters(recurse=False):
                if not param.requires_grad:
                    continue
                full = f"{module_name}.{name}" if module_name else name
                in_backbone = full.startswith(self.backbone_prefix)
                no_decay = isinstance(module, NORM_LAYERS) or param.ndim <= 1
                groups.setdefault((in_backbone, no_decay), []).append(param)
        backbone_lr = hp.backbone_lr if hp.backbone_lr is not None else self.lr
        return [
            {
                "params": params,
                "lr": backbone_lr if in_backbone else self.lr,
                "weight_decay": 0.0 if no_decay else hp.weight_decay,
                "name": f"{'backbone' if in_backbone else 'head'}{'_no_decay' if no_decay else ''}",
            }
            for (in_backbone, no_decay), params in sorted(groups.items())
        ]

    def steps_per_epoch(self) -> int:
        """Optimizer steps in one epoch, as Lightning estimates them."""
        trainer = self.trainer
        total = int(trainer.estimated_stepping_batches)
        epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else 1
        return max(1, total // epochs)

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW over :meth:`parameter_groups` at :attr:`lr`; linear warm-up then MultiStepLR.

        The AdamW is PyTorch's fused one (one kernel for all parameters) on CPU and CUDA.
        """
        hp = self.hparams
        groups = self.parameter_groups()
        devices = {p.device.type for group in groups for p in group["params"]}
        optimizer = torch.optim.AdamW(
            groups,
            lr=self.lr,
            weight_decay=hp.weight_decay,
            betas=tuple(hp.betas),
            fused=devices <= {"cpu", "cuda"} or None,
        )
        per_epoch = self.steps_per_epoch()
        warmup = (
            hp.warmup_steps if hp.warmup_steps is not None else round(hp.warmup_epochs * per_epoch)
        )
        schedulers: list[torch.optim.lr_scheduler.LRScheduler] = []
        if warmup > 0:
            schedulers.append(LinearLR(optimizer, start_factor=1e-3, total_iters=warmup))
        schedulers.append(
            MultiStepLR(
                optimizer, milestones=[m * per_epoch for m in hp.milestones], gamma=hp.gamma
            )
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": ChainedScheduler(schedulers, optimizer),
                "interval": "step",
            },
        }

    # ----------------------------------------------------------------------- evaluation
    def to_coco_results(
        self, detections: Detections, targets: list[Target]
    ) -> list[dict[str, Any]]:
        """COCO result dicts in original pixels with the dataset's category ids."""
        results = []
        for det, target in zip(detections, targets):
            boxes = to_original_pixels(det["boxes"].detach().float().cpu(), target)
            category_ids = [self.category_ids[int(label)] for label in det["labels"].tolist()]
            results += coco_results(target["image_id"], boxes, det["scores"], category_ids)
        return results

    def _start_evaluation(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "ground_truth"):
            self.evaluator = None
            return
        self.evaluator = CocoEvaluator(datamodule.ground_truth(stage))

    def _evaluation_step(self, batch: tuple[Tensor, list[Target]]) -> dict[str, Any]:
        images, targets = batch
        detections = self.detect(images)
        if self.evaluator is not None:
            self.evaluator.update(
                self.to_coco_results(detections, targets), [int(t["image_id"]) for t in targets]
            )
        return {"detections": detections}

    def _finish_evaluation(self, stage: str) -> None:
        if self.evaluator is None:
            return
        stats = self.evaluator.compute()
        headline = {f"{stage}/AP", f"{stage}/AP50"}
        values = {f"{stage}/{k}": float(v) for k, v in stats.items()}
        self.log_dict(
            {k: v for k, v in values.items() if k in headline}, prog_bar=True, sync_dist=True
        )
        self.log_dict({k: v for k, v in values.items() if k not in headline}, sync_dist=True)
        details = self.evaluator.details
        if details is not None:
            names = dict(zip(self.inference_spec.category_ids, self.class_names, strict=False))
            self.log_dict(
                {
                    f"{stage}/AP_{names.get(c, c)}": float(ap)
                    for c, ap in zip(details.category_ids, details.class_ap, strict=True)
                    if ap >= 0
                },
                sync_dist=True,
            )
        if not self.trainer.sanity_checking:
            headline_keys = ("AP", "AP50", "AP75", "APs", "APm", "APl")
            shown = "  ".join(f"{k} {stats[k]:.4f}" for k in headline_keys)
            rank_zero_info(f"epoch {self.current_epoch} {stage}: {shown}")
        self.last_evaluation = self.evaluator.details
        self.evaluator = None

    def on_validation_epoch_start(self) -> None:  # noqa: D102
        self._start_evaluation("val")

    def validation_step(self, batch: tuple[Tensor, list[Target]], batch_idx: int) -> dict[str, Any]:  # noqa: D102
        return self._evaluation_step(batch)

    def on_validation_epoch_end(self) -> None:  # noqa: D102
        self._finish_evaluation("val")

    def on_test_epoch_start(self) -> None:  # noqa: D102
        self._start_evaluation("test")

    def test_step(self, batch: tuple[Tensor, list[Target]], batch_idx: int) -> dict[str, Any]:  # noqa: D102
        return self._evaluation_step(batch)

    def on_test_epoch_end(self) -> None:  # noqa: D102
        self._finish_evaluation("test")

    def predict_step(
        self, batch: tuple[Tensor, list[Target]], batch_idx: int
    ) -> list[dict[str, Any]]:
        """Detections per image in original pixels, with category ids and names."""
        images, targets = batch
        detections = self.detect(images)
        outputs = []
        for det, target in zip(detections, targets):
            boxes = to_original_pixels(det["boxes"].detach().float().cpu(), target)
            labels = det["labels"].detach().cpu()
            outputs.append(
                {
                    "image_id": int(target["image_id"]),
                    "file_name": target.get("file_name"),
                    "boxes": boxes,
                    "scores": det["scores"].detach().float().cpu(),
                    "labels": labels,
                    "category_ids": [self.category_ids[int(i)] for i in labels],
                    "class_names": [self.class_names[int(i)] for i in labels],
                }
            )
        return outputs
