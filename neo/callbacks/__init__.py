"""Callbacks: EMA, visualisation, prediction files."""

from neo.callbacks.ema import EMA
from neo.callbacks.prediction_writer import CocoPredictionWriter
from neo.callbacks.visualization import DetectionVisualizer

__all__ = ["EMA", "CocoPredictionWriter", "DetectionVisualizer"]
