"""Inference: the checkpoint loader and several detectors on one shared spectrogram, merged."""

from neo.utils.lazy import lazy_exports

__all__ = [
    "Detections",
    "InferenceSpec",
    "LoadedDetector",
    "MultiModelDetector",
    "load_detector",
    "merge_detections",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Detections": "neo.inference.merge",
        "InferenceSpec": "neo.inference.spec",
        "LoadedDetector": "neo.inference.loading",
        "MultiModelDetector": "neo.inference.multi_model",
        "load_detector": "neo.inference.loading",
        "merge_detections": "neo.inference.merge",
    },
)
