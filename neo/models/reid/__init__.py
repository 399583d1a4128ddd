"""ReID network in pure PyTorch: timm backbone, pooling, BNNeck, classifier heads and losses."""

from neo.utils.lazy import lazy_exports

__all__ = [
    "MEAN",
    "STD",
    "ArcFaceHead",
    "BNNeck",
    "CenterLoss",
    "CosFaceHead",
    "GeneralizedMeanPooling",
    "LinearHead",
    "ReIDModel",
    "batch_hard_triplet_loss",
    "build_backbone",
    "load_backbone_weights",
    "normalize",
    "pairwise_distances",
    "probe_feature_map",
    "read_state_dict",
    "remove_last_downsampling",
]
_PACKAGE = "neo.models.reid"
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(
            [
                "build_backbone",
                "load_backbone_weights",
                "probe_feature_map",
                "read_state_dict",
                "remove_last_downsampling",
            ],
            f"{_PACKAGE}.backbone",
        ),
        **dict.fromkeys(
            ["ArcFaceHead", "BNNeck", "CosFaceHead", "GeneralizedMeanPooling", "LinearHead"],
            f"{_PACKAGE}.heads",
        ),
        **dict.fromkeys(["MEAN", "STD", "ReIDModel", "normalize"], f"{_PACKAGE}.model"),
        **dict.fromkeys(
            ["CenterLoss", "batch_hard_triplet_loss", "pairwise_distances"], f"{_PACKAGE}.losses"
        ),
    },
)
