"""Callbacks: EMA, visualisation, prediction files."""

from neo.callbacks.auto_tune import AutoTune
from neo.callbacks.detection_prf import DetectionPRF
from neo.callbacks.ema import EMA
from neo.callbacks.prediction_writer import CocoPredictionWriter
from neo.callbacks.visualization import DetectionVisualizer

__all__ = ["EMA", "AutoTune", "CocoPredictionWriter", "DetectionPRF", "DetectionVisualizer"]
