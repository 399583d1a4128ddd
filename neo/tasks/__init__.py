"""LightningModules: thin wrappers that train, evaluate and predict with neo's models."""

from neo.tasks.detection import DetectionTask
from neo.tasks.faster_rcnn import FasterRCNNTask

__all__ = ["DetectionTask", "FasterRCNNTask"]
