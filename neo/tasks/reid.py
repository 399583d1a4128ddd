"""The re-identification LightningModule: strong-baseline training, open-set evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from lightning import LightningModule
from torch import Tensor

from neo.data.reid.records import GALLERY, QUERY
from neo.metrics.reid import (
    auroc,
    best_threshold,
    evaluate_rank,
    open_set_predictions,
    oscr,
    pairwise_distance,
    re_ranking,
)
from neo.models.reid.losses import CenterLoss, batch_hard_triplet_loss
from neo.models.reid.model import MEAN, STD, ReIDModel, normalize
from neo.tasks.detection import eval_mode
from neo.utils.random_state import resume_random_state, save_random_state

REID_SPEC_KEY = "neo_reid_spec"


def identity_prototypes(embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """One unit vector per identity: the normalised mean of its L2-normalised embeddings.

    Returns:
        ``(prototypes (I, D), identities (I,))`` with identities sorted.
    """
    identities = torch.unique(labels)
    sums = torch.zeros(len(identities), embeddings.shape[1], dtype=embeddings.dtype)
    sums.index_add_(0, torch.searchsorted(identities, labels), embeddings)
    return F.normalize(sums, dim=1), identities


class ReIDTask(LightningModule):
    """Strong-baseline ReID (BNNeck, label-smoothed CE + batch-hard triplet) with open-set metrics.

    Training batches are ``(uint8 crops, class indices)`` in P×K form. Validation takes the query
    and gallery loaders of :class:`neo.data.reid.ReIDDataModule` and logs, per epoch:
    ``val/rank1``, ``val/rank5``, ``val/mAP`` (Market-1501 protocol over the known queries against
    the gallery), ``val/AUROC`` and ``val/OSCR`` (known vs unknown queries, from the cosine
    similarity to the nearest identity prototype), ``val/macro_F1`` (identities and -1 for
    unknown, at the threshold that maximises it on this validation set) and ``val/threshold``.
    The prototypes (one per known identity, from the gallery) and that threshold are kept in the
    checkpoint, so ``predict`` and :meth:`identify` need no training data.

    Args:
        num_classes: known identities (set from the data module).
        backbone: timm model name.
        pretrained: start from timm's ImageNet weights (downloads; off by default).
        weights: local backbone weights to start from instead.
        last_stride: stride of the backbone's last stage (1: the strong baseline's).
        pooling: ``avg`` or ``gem`` (generalised mean) pooling.
        neck: ``bnneck`` (BatchNorm with frozen bias before the classifier) or ``none``.
        head: ``linear``, ``arcface`` or ``cosface`` classifier.
        head_scale: logit scale of the margin heads.
        head_margin: margin of the margin heads (None: the head's default).
        label_smoothing: label smoothing of the cross-entropy.
        triplet_margin: batch-hard triplet margin (None: soft margin).
        triplet_weight: weight of the triplet loss.
        center_loss_weight: weight of the center loss (0: off).
        center_alpha: center update rate of the center loss.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        warmup_epochs: epochs of linear warm-up from ``warmup_factor × lr``.
        warmup_factor: learning-rate factor at the first epoch.
        milestones: epochs at which the learning rate is multiplied by ``gamma``.
        gamma: learning-rate decay factor.
        distance: retrieval distance, ``cosine`` or ``euclidean`` (squared, as torchreid).
        rerank: apply k-reciprocal re-ranking before the CMC/mAP.
        max_rank: length of the CMC curve.
    """

    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet50",
        pretrained: bool = False,
        weights: Path | None = None,
        last_stride: int = 1,
        pooling: Literal["avg", "gem"] = "avg",
        neck: Literal["bnneck", "none"] = "bnneck",
        head: Literal["linear", "arcface", "cosface"] = "linear",
        head_scale: float = 30.0,
        head_margin: float | None = None,
        label_smoothing: float = 0.1,
        triplet_margin: float | None = 0.3,
        triplet_weight: float = 1.0,
        center_loss_weight: float = 0.0,
        center_alpha: float = 0.5,
        lr: float = 3.5e-4,
        weight_decay: float = 5e-4,
        warmup_epochs: int = 10,
        warmup_factor: float = 0.01,
        milestones: list[int] = [40, 70],  # noqa: B006
        gamma: float = 0.1,
        distance: Literal["cosine", "euclidean"] = "cosine",
        rerank: bool = False,
        max_rank: int = 50,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.save_hyperparameters()
        self.model = ReIDModel(
            backbone=backbone,
            num_classes=num_classes,
            pretrained=pretrained,
            weights=weights,
            last_stride=last_stride,
            pooling=pooling,
            neck=neck,
            head=head,
            head_scale=head_scale,
            head_margin=head_margin,
        )
        self.center_loss = (
            CenterLoss(num_classes, self.model.feature_dim, alpha=center_alpha)
            if center_loss_weight > 0
            else None
        )
        self.identities: list[int] = list(range(num_classes))
        self.input_size: tuple[int, int] | None = None
        self.prototypes = torch.zeros(0, self.model.feature_dim)
        self.prototype_identities = torch.zeros(0, dtype=torch.long)
        self.threshold = float("-inf")
        self._outputs: dict[int, list[tuple[Tensor, Tensor]]] = {}

    @classmethod
    def class_path(cls) -> str:
        """Import path of this task class, as the checkpoint records it."""
        return f"{cls.__module__}.{cls.__qualname__}"

    @classmethod
    def without_initial_weights(cls, hparams: dict[str, Any]) -> dict[str, Any]:
        """``hparams`` with downloads and starting-weight files off (a checkpoint has them all)."""
        return {**hparams, "pretrained": False, "weights": None}

    # ----------------------------------------------------------------------- inference
    def forward(self, images: Tensor) -> Tensor:
        """The inference contract: L2-normalised embeddings of crops at the input size.

        Args:
            images: uint8 (B, 3, H, W) RGB crops resized to the input size (float in [0, 1]
                accepted too).

        Returns:
            (B, D) float embeddings of unit length (the feature after the BNNeck).
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        with torch.no_grad(), eval_mode(self):
            return self.embed(images)

    def embed(self, images: Tensor) -> Tensor:
        """Normalised embeddings in the current mode (no ``no_grad``)."""
        _, embeddings = self.model(self.to_model_input(images))
        return F.normalize(embeddings, dim=1)

    def identify(self, embeddings: Tensor) -> tuple[Tensor, Tensor]:
        """Identity of each embedding, -1 below the validation threshold, and its similarity.

        Returns:
            ``(identities (B,), scores (B,))``: the nearest prototype's ``label_id`` (or -1) and
            the cosine similarity to it.
        """
        if len(self.prototypes) == 0:
            raise RuntimeError(
                "this ReID model has no identity prototypes yet: they are made by validation"
            )
        similarity = embeddings.float().cpu() @ self.prototypes.T
        scores, nearest = similarity.max(dim=1)
        identities = self.prototype_identities[nearest]
        identities = torch.where(scores >= self.threshold, identities, torch.full_like(nearest, -1))
        return identities, scores

    @staticmethod
    def to_model_input(images: Tensor) -> Tensor:
        """uint8 images (or float in [0, 1]) normalised with the ImageNet mean and std."""
        if images.dtype == torch.uint8:
            return normalize(images)
        mean = torch.tensor(MEAN, device=images.device).view(-1, 1, 1)
        std = torch.tensor(STD, device=images.device).view(-1, 1, 1)
        return (images.float() - mean) / std

    # ----------------------------------------------------------------------- training
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:  # noqa: D102
        images, labels = batch
        labels = labels.long()
        features, embeddings = self.model(self.to_model_input(images))
        logits = self.model.classify(embeddings, labels)
        hp = self.hparams
        losses = {
            "ce": F.cross_entropy(logits, labels, label_smoothing=hp.label_smoothing),
            "triplet": hp.triplet_weight
            * batch_hard_triplet_loss(features, labels, margin=hp.triplet_margin),
        }
        if self.center_loss is not None:
            losses["center"] = hp.center_loss_weight * self.center_loss(features, labels)
        loss = sum(losses.values())
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        size = len(labels)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, batch_size=size)
        self.log("train/accuracy", accuracy, batch_size=size)
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        """Adam; linear warm-up over ``warmup_epochs``, then steps at ``milestones`` (per epoch)."""
        hp = self.hparams
        optimizer = torch.optim.Adam(
            [p for p in self.parameters() if p.requires_grad],
            lr=hp.lr,
            weight_decay=hp.weight_decay,
        )
        milestones = sorted(hp.milestones)

        def factor(epoch: int) -> float:
            decay = hp.gamma ** sum(epoch >= m for m in milestones)
            if epoch < hp.warmup_epochs:
                progress = epoch / hp.warmup_epochs
                return decay * (hp.warmup_factor + (1 - hp.warmup_factor) * progress)
            return decay

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler}}

    # ----------------------------------------------------------------------- evaluation
    def setup(self, stage: str) -> None:
        """Takes the identities and the input size from the data module when there is one."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        identities = getattr(datamodule, "identities", None)
        if identities is not None and stage == "fit":
            if len(identities) != self.hparams.num_classes:
                raise ValueError(
                    f"the data has {len(identities)} known identities but the model was built "
                    f"for {self.hparams.num_classes}"
                )
            self.identities = [int(i) for i in identities]
        if hasattr(datamodule, "inference_preprocessing"):
            self.input_size = tuple(datamodule.inference_preprocessing()["input_size"])

    def on_validation_epoch_start(self) -> None:  # noqa: D102
        self._outputs = {QUERY: [], GALLERY: []}

    def validation_step(  # noqa: D102
        self, batch: tuple[Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        images, indices = batch
        self._outputs[dataloader_idx].append((indices.cpu(), self.embed(images).float().cpu()))

    def _gathered(self, which: int) -> Tensor:
        """The embeddings of one evaluation set in index order (from every process)."""
        parts = self._outputs.get(which) or []
        if not parts:
            return torch.zeros(0, self.model.feature_dim)
        indices = torch.cat([i for i, _ in parts])
        embeddings = torch.cat([e for _, e in parts])
        if self.trainer.world_size > 1:
            indices = self.all_gather(indices.to(self.device)).flatten().cpu()
            embeddings = self.all_gather(embeddings.to(self.device)).flatten(0, 1).cpu()
        ordered = torch.zeros(int(indices.max()) + 1, embeddings.shape[1])
        ordered[indices] = embeddings
        return ordered

    def on_validation_epoch_end(self) -> None:  # noqa: D102
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "evaluation_info"):
            return
        query_info = datamodule.evaluation_info(QUERY)
        gallery_info = datamodule.evaluation_info(GALLERY)
        query, gallery = self._gathered(QUERY), self._gathered(GALLERY)
        if len(query) != len(query_info.labels) or len(gallery) != len(gallery_info.labels):
            return  # a partial pass (sanity check with limited batches)
        metrics = self.score(query, gallery, query_info, gallery_info)
        self.log_dict({f"val/{k}": v for k, v in metrics.items()}, sync_dist=False)

    def score(self, query: Tensor, gallery: Tensor, query_info: Any, gallery_info: Any) -> dict:
        """Retrieval and open-set metrics; sets the prototypes and the unknown threshold."""
        hp = self.hparams
        q_labels, g_labels = query_info.labels, gallery_info.labels
        known = q_labels >= 0
        metrics: dict[str, float] = {}
        if known.any():
            distance = pairwise_distance(query[known], gallery, metric=hp.distance)
            if hp.rerank:
                distance = re_ranking(
                    distance,
                    pairwise_distance(query[known], query[known], metric=hp.distance),
                    pairwise_distance(gallery, gallery, metric=hp.distance),
                )
            cmc, mean_ap = evaluate_rank(
                distance,
                q_labels[known],
                g_labels,
                query_info.cameras[known],
                gallery_info.cameras,
                max_rank=min(hp.max_rank, len(g_labels)),
            )
            metrics.update(rank1=float(cmc[0]), rank5=float(cmc[min(4, len(cmc) - 1)]))
            metrics["mAP"] = float(mean_ap)
        prototypes, identities = identity_prototypes(gallery, torch.as_tensor(g_labels))
        self.prototypes, self.prototype_identities = prototypes, identities
        similarity = query @ prototypes.T
        scores, nearest = similarity.max(dim=1)
        predicted = identities[nearest].numpy()
        scores_np = scores.numpy().astype(np.float64)
        if known.any() and (~known).any():
            metrics["AUROC"] = auroc(scores_np[known], scores_np[~known])
            correct = predicted[known] == q_labels[known]
            metrics["OSCR"] = oscr(scores_np[known], correct, scores_np[~known])
        threshold, f1 = best_threshold(q_labels, predicted, scores_np)
        self.threshold = float(threshold)
        closed = open_set_predictions(predicted, scores_np, float("-inf"))
        metrics["macro_F1"] = float(f1)
        metrics["accuracy_known"] = float((closed[known] == q_labels[known]).mean())
        metrics["threshold"] = float(threshold) if np.isfinite(threshold) else -1.0
        return metrics

    # ----------------------------------------------------------------------- prediction
    def predict_step(  # noqa: D102
        self, batch: tuple[Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Tensor]:
        images, indices = batch
        embeddings = self.embed(images)
        identities, scores = self.identify(embeddings)
        return {
            "indices": indices.cpu(),
            "embeddings": embeddings.float().cpu(),
            "identities": identities,
            "scores": scores,
        }

    def prediction_writer(self) -> Any:
        """The callback ``neo predict`` adds when the config names none."""
        from neo.callbacks.reid_prediction_writer import ReIDPredictionWriter

        return ReIDPredictionWriter()

    # ----------------------------------------------------------------------- checkpoint
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Stores what identification needs besides the weights (readable weights-only)."""
        checkpoint[REID_SPEC_KEY] = {
            "task_class": self.class_path(),
            "identities": list(self.identities),
            "input_size": list(self.input_size) if self.input_size else None,
            "resize": "stretch",
            "threshold": self.threshold,
            "distance": self.hparams.distance,
            "prototypes": self.prototypes.clone(),
            "prototype_identities": self.prototype_identities.clone(),
        }
        save_random_state(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restores what :meth:`on_save_checkpoint` stored (the generators only to resume a fit)."""
        resume_random_state(self, checkpoint)
        spec = checkpoint.get(REID_SPEC_KEY)
        if not isinstance(spec, dict):
            return
        self.identities = [int(i) for i in spec.get("identities") or self.identities]
        size = spec.get("input_size")
        self.input_size = (int(size[0]), int(size[1])) if size else None
        self.threshold = float(spec.get("threshold", float("-inf")))
        self.prototypes = torch.as_tensor(spec["prototypes"]).float()
        self.prototype_identities = torch.as_tensor(spec["prototype_identities"]).long()
