"""torchvision Faster R-CNN with ResNet-FPN backbones, sized by the data pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from torch import Tensor, nn
from torchvision.models import ResNet18_Weights, ResNet50_Weights
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.rpn import RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool
from torchvision.ops.misc import FrozenBatchNorm2d

from neo.models.anchors import DEFAULT_ASPECT_RATIOS, configured_anchors

BackboneName = Literal["resnet18", "resnet50"]
IMAGENET_WEIGHTS = {
    "resnet18": ResNet18_Weights.IMAGENET1K_V1,
    "resnet50": ResNet50_Weights.IMAGENET1K_V2,
}


class PresizedTransform(GeneralizedRCNNTransform):
    """Normalises and batches images without resizing them: neo's data pipeline already did."""

    def resize(
        self, image: Tensor, target: dict[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, Tensor] | None]:
        """Returns the image and target unchanged."""
        return image, target


def load_backbone_weights(path: Path) -> dict[str, Tensor]:
    """Reads a ResNet state dict from a local file (tensors only, never pickled objects)."""
    from neo.utils.checkpoint_io import read_checkpoint

    state = read_checkpoint(path)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a ResNet state dict of tensors")
    return state


def anchor_generator(
    sizes: list[tuple[float, ...]], aspect_ratios: list[float] | None = None
) -> AnchorGenerator:
    """The anchor generator of ``sizes`` per level and the same aspect ratios on every level."""
    ratios = tuple(aspect_ratios) if aspect_ratios else DEFAULT_ASPECT_RATIOS
    levels = tuple(tuple(level) for level in sizes)
    return AnchorGenerator(levels, (ratios,) * len(levels))


def set_anchors(
    model: FasterRCNN, sizes: list[tuple[float, ...]], aspect_ratios: list[float]
) -> None:
    """Gives ``model`` new anchors; the RPN head is rebuilt when the anchors per place change."""
    generator = anchor_generator(sizes, aspect_ratios)
    per_place = generator.num_anchors_per_location()[0]
    head = model.rpn.head
    if head.cls_logits.out_channels != per_place:
        model.rpn.head = RPNHead(head.conv[0][0].in_channels, per_place).to(
            head.cls_logits.weight.device
        )
    model.rpn.anchor_generator = generator


def build_faster_rcnn(
    num_classes: int,
    backbone: BackboneName = "resnet18",
    pretrained_backbone: bool = False,
    backbone_weights: Path | None = None,
    trainable_backbone_layers: int = 5,
    frozen_norm: bool | None = None,
    returned_layers: list[int] | None = None,
    fpn_channels: int = 256,
    box_head_dim: int = 1024,
    anchor_sizes: list[tuple[float, ...]] | None = None,
    aspect_ratios: list[float] | None = None,
    **detector_kwargs: Any,
) -> FasterRCNN:
    """Builds a Faster R-CNN ResNet-FPN detector; nothing is downloaded unless asked for.

    Without ImageNet weights the backbone trains from scratch with ordinary BatchNorm; with them
    (``pretrained_backbone`` downloads torchvision's, ``backbone_weights`` reads a local file) its
    BatchNorm layers are frozen as in torchvision's recipe.

    Args:
        num_classes: object classes, without background.
        backbone: ResNet depth.
        pretrained_backbone: download torchvision's ImageNet weights (needs internet).
        backbone_weights: local ResNet state dict to start from instead.
        trainable_backbone_layers: ResNet stages trained when the BatchNorm is frozen (5 = all).
        frozen_norm: frozen BatchNorm in the backbone; None: exactly when starting from weights.
        returned_layers: ResNet stages (1-4) feeding the FPN; default all four. Dropping stage 1
            (stride 4) saves most of the FPN cost when objects are not tiny.
        fpn_channels: channels of the FPN levels (torchvision: 256); fewer make small models.
        box_head_dim: width of the two-layer box head (torchvision: 1024).
        anchor_sizes: anchor sizes per FPN level, one tuple per level (default: 32, 64, ... up
            to 512 over the levels the backbone returns).
        aspect_ratios: anchor aspect ratios ``h / w`` shared by the levels (default 0.5, 1, 2).
        **detector_kwargs: passed to torchvision's ``FasterRCNN`` (e.g. ``box_score_thresh``).

    Returns:
        The detector; its labels are 1..num_classes with 0 for background.
    """
    if pretrained_backbone and backbone_weights is not None:
        raise ValueError("give either pretrained_backbone or backbone_weights, not both")
    if frozen_norm is None:
        frozen_norm = pretrained_backbone or backbone_weights is not None
    fpn = resnet_fpn_backbone(
        backbone_name=backbone,
        weights=IMAGENET_WEIGHTS[backbone] if pretrained_backbone else None,
        norm_layer=FrozenBatchNorm2d if frozen_norm else nn.BatchNorm2d,
        trainable_layers=trainable_backbone_layers if frozen_norm else 5,
        returned_layers=returned_layers,
    )
    if fpn_channels != fpn.out_channels:
        in_channels = [block[0].in_channels for block in fpn.fpn.inner_blocks]
        fpn.fpn = FeaturePyramidNetwork(in_channels, fpn_channels, extra_blocks=LastLevelMaxPool())
        fpn.out_channels = fpn_channels
    if anchor_sizes is None:
        default_sizes, _ = configured_anchors(None, None, returned_layers)
        anchor_sizes = [(size,) for size in default_sizes]
    detector_kwargs["rpn_anchor_generator"] = anchor_generator(anchor_sizes, aspect_ratios)
    if backbone_weights is not None:
        state = load_backbone_weights(backbone_weights)
        missing, _ = fpn.body.load_state_dict(
            {k: v for k, v in state.items() if not k.startswith("fc.")}, strict=False
        )
        if missing:
            raise ValueError(
                f"{backbone_weights}: not a {backbone} state dict (missing {missing[:3]})"
            )
    model = FasterRCNN(
        fpn,
        box_head=TwoMLPHead(fpn_channels * 7 * 7, box_head_dim),
        box_predictor=FastRCNNPredictor(box_head_dim, num_classes + 1),
        **detector_kwargs,
    )
    model.transform = PresizedTransform(
        min_size=800,
        max_size=1333,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        size_divisible=32,
    )
    return model
