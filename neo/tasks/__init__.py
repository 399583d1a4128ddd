"""LightningModules: thin wrappers that train, evaluate and predict with neo's models."""

from neo.utils.lazy import lazy_exports

__all__ = ["DetectionTask", "FasterRCNNTask", "RTDETRTask", "ReIDTask"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DetectionTask": "neo.tasks.detection",
        "FasterRCNNTask": "neo.tasks.faster_rcnn",
        "RTDETRTask": "neo.tasks.rtdetr",
        "ReIDTask": "neo.tasks.reid",
    },
)
