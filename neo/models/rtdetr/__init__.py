"""RT-DETRv2 in pure PyTorch: faithful to the official model, any input size (multiple of 32)."""

from neo.utils.lazy import lazy_exports

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
_PACKAGE = "neo.models.rtdetr"
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(["PResNet", "freeze_batch_norm"], f"{_PACKAGE}.backbone"),
        **dict.fromkeys(
            ["VARIANTS", "RTDETRConfig", "build_rtdetr", "rtdetr_config"], f"{_PACKAGE}.build"
        ),
        **dict.fromkeys(
            ["LoadReport", "extract_state_dict", "load_official_state_dict"],
            f"{_PACKAGE}.checkpoint",
        ),
        "RTDETRCriterion": f"{_PACKAGE}.criterion",
        "RTDETRDecoder": f"{_PACKAGE}.decoder",
        **dict.fromkeys(
            ["MSDeformableAttention", "multi_scale_deformable_sample"],
            f"{_PACKAGE}.deformable_attention",
        ),
        **dict.fromkeys(["DenoisingGroups", "build_denoising_groups"], f"{_PACKAGE}.denoising"),
        "HybridEncoder": f"{_PACKAGE}.hybrid_encoder",
        "HungarianMatcher": f"{_PACKAGE}.matcher",
        **dict.fromkeys(["RTDETR", "SIZE_DIVISOR"], f"{_PACKAGE}.model"),
        **dict.fromkeys(
            ["SinCosPositionEmbedding2D", "sincos_position_embedding_2d"],
            f"{_PACKAGE}.positional_encoding",
        ),
        "RTDETRPostProcessor": f"{_PACKAGE}.postprocess",
    },
)
