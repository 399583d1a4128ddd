"""Inference: several detectors on one shared spectrogram, merged."""

from neo.inference.merge import Detections, merge_detections
from neo.inference.multi_model import LoadedModel, MultiModelDetector, load_model

__all__ = ["Detections", "LoadedModel", "MultiModelDetector", "load_model", "merge_detections"]
