"""Re-identification data: meta CSVs, crops, negatives, open-set splits, datasets, samplers."""

from neo.utils.lazy import lazy_exports

__all__ = [
    "BoxRecord",
    "CroppedBBoxDataset",
    "DemoReIDDataModule",
    "FrameCropDataset",
    "IdentityBatchSampler",
    "OpenSetSplit",
    "ReIDDataModule",
    "build_open_set_splits",
    "build_open_set_splits_cv",
    "load_negatives_from_csv",
    "read_meta",
    "write_crops",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "BoxRecord": "neo.data.reid.records",
        "CroppedBBoxDataset": "neo.data.reid.dataset",
        "DemoReIDDataModule": "neo.data.reid.demo",
        "FrameCropDataset": "neo.data.reid.dataset",
        "IdentityBatchSampler": "neo.data.reid.sampler",
        "OpenSetSplit": "neo.data.reid.splits",
        "ReIDDataModule": "neo.data.reid.datamodule",
        "build_open_set_splits": "neo.data.reid.splits",
        "build_open_set_splits_cv": "neo.data.reid.splits",
        "load_negatives_from_csv": "neo.data.reid.negatives",
        "read_meta": "neo.data.reid.meta",
        "write_crops": "neo.data.reid.crops",
    },
)
