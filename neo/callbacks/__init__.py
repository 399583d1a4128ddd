"""Callbacks: EMA, visualisation, prediction files, auto-tuning, export and Remix profiling."""

from neo.utils.lazy import lazy_exports

__all__ = [
    "EMA",
    "AutoTune",
    "CocoPredictionWriter",
    "DetectionPRF",
    "DetectionVisualizer",
    "EvaluationPlots",
    "ExportOnFitEnd",
    "INT8Calibration",
    "ReIDPredictionWriter",
    "RemixProfiling",
    "RunTimeEstimate",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AutoTune": "neo.callbacks.auto_tune",
        "CocoPredictionWriter": "neo.callbacks.prediction_writer",
        "DetectionPRF": "neo.callbacks.detection_prf",
        "DetectionVisualizer": "neo.callbacks.visualization",
        "EMA": "neo.callbacks.ema",
        "EvaluationPlots": "neo.callbacks.evaluation_plots",
        "ExportOnFitEnd": "neo.callbacks.export",
        "INT8Calibration": "neo.callbacks.export",
        "ReIDPredictionWriter": "neo.callbacks.reid_prediction_writer",
        "RemixProfiling": "neo.callbacks.remix_profiling",
        "RunTimeEstimate": "neo.callbacks.run_time",
    },
)
