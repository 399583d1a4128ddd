"""LightningModules: thin wrappers that train, evaluate and predict with neo's models."""

from neo.tasks.detection import DetectionTask
from neo.tasks.faster_rcnn import FasterRCNNTask
from neo.tasks.rtdetr import RTDETRTask

__all__ = ["DetectionTask", "FasterRCNNTask", "RTDETRTask"]
