"""Data modules, datasets and transforms."""

from neo.data.base import DetectionDataModule
from neo.data.coco_datamodule import CocoDataModule
from neo.data.demo import DemoCocoDataModule
from neo.data.problems import DatasetError
from neo.data.spectrogram_datamodule import SpectrogramDataModule

__all__ = [
    "CocoDataModule",
    "DatasetError",
    "DemoCocoDataModule",
    "DetectionDataModule",
    "SpectrogramDataModule",
]
