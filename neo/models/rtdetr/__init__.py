"""RT-DETRv2 in pure PyTorch: faithful to the official model, any input size (multiple of 32)."""

from neo.models.rtdetr.backbone import PResNet, freeze_batch_norm
from neo.models.rtdetr.build import VARIANTS, RTDETRConfig, build_rtdetr, rtdetr_config
from neo.models.rtdetr.checkpoint import LoadReport, extract_state_dict, load_official_state_dict
from neo.models.rtdetr.criterion import RTDETRCriterion
from neo.models.rtdetr.decoder import RTDETRDecoder
from neo.models.rtdetr.deformable_attention import (
    MSDeformableAttention,
    multi_scale_deformable_sample,
)
from neo.models.rtdetr.denoising import DenoisingGroups, build_denoising_groups
from neo.models.rtdetr.hybrid_encoder import HybridEncoder
from neo.models.rtdetr.matcher import HungarianMatcher
from neo.models.rtdetr.model import RTDETR, SIZE_DIVISOR
from neo.models.rtdetr.positional_encoding import (
    SinCosPositionEmbedding2D,
    sincos_position_embedding_2d,
)
from neo.models.rtdetr.postprocess import RTDETRPostProcessor

__all__ = [
    "RTDETR",
    "SIZE_DIVISOR",
    "VARIANTS",
    "DenoisingGroups",
    "HungarianMatcher",
    "HybridEncoder",
    "LoadReport",
    "MSDeformableAttention",
    "PResNet",
    "RTDETRConfig",
    "RTDETRCriterion",
    "RTDETRDecoder",
    "RTDETRPostProcessor",
    "SinCosPositionEmbedding2D",
    "build_denoising_groups",
    "build_rtdetr",
    "extract_state_dict",
    "freeze_batch_norm",
    "load_official_state_dict",
    "multi_scale_deformable_sample",
    "rtdetr_config",
    "sincos_position_embedding_2d",
]
