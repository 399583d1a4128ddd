"""Inference: the checkpoint loader and several detectors on one shared spectrogram, merged."""

from neo.utils.lazy import lazy_exports

__all__ = [
    "Detections",
    "InferenceSpec",
    "LoadedDetector",
    "LoadedModel",
    "MultiModelDetector",
    "load_detector",
    "load_model",
    "merge_detections",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Detections": "neo.inference.merge",
        "InferenceSpec": "neo.inference.spec",
        "LoadedDetector": "neo.inference.loading",
        "LoadedModel": "neo.inference.multi_model",
        "MultiModelDetector": "neo.inference.multi_model",
        "load_detector": "neo.inference.loading",
        "load_model": "neo.inference.multi_model",
        "merge_detections": "neo.inference.merge",
    },
)
