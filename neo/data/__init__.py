"""Data modules, datasets and transforms."""

from neo.utils.lazy import lazy_exports

__all__ = [
    "CocoDataModule",
    "DatasetError",
    "DemoCocoDataModule",
    "DemoReIDDataModule",
    "DemoSceneDataModule",
    "DetectionDataModule",
    "ReIDDataModule",
    "SpectrogramDataModule",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "CocoDataModule": "neo.data.coco_datamodule",
        "DatasetError": "neo.data.problems",
        "DemoCocoDataModule": "neo.data.demo",
        "DemoReIDDataModule": "neo.data.reid.demo",
        "DemoSceneDataModule": "neo.data.scene_tiles",
        "ReIDDataModule": "neo.data.reid.datamodule",
        "DetectionDataModule": "neo.data.base",
        "SpectrogramDataModule": "neo.data.spectrogram_datamodule",
    },
)
