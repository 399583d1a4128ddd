"""Deployment: neo export (ONNX, TensorRT, Torch-TensorRT, INT8), neo benchmark, FPS targets."""

from neo.utils.lazy import lazy_exports

__all__ = [
    "CalibrationConfig",
    "DeploySpec",
    "DeployedModel",
    "ExportRequest",
    "FramePreprocessor",
    "benchmark_model",
    "collect_calibration_data",
    "export_detector",
    "extract_calibration_frames",
    "load_model",
    "optimize_for_fps",
    "read_sidecar",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "CalibrationConfig": "neo.deploy.options",
        "DeploySpec": "neo.deploy.contract",
        "DeployedModel": "neo.deploy.runtime",
        "ExportRequest": "neo.deploy.export",
        "FramePreprocessor": "neo.deploy.preprocess",
        "benchmark_model": "neo.deploy.benchmark",
        "collect_calibration_data": "neo.deploy.calibration",
        "export_detector": "neo.deploy.export",
        "extract_calibration_frames": "neo.deploy.calibration",
        "load_model": "neo.deploy.runtime",
        "optimize_for_fps": "neo.deploy.fps",
        "read_sidecar": "neo.deploy.contract",
    },
)
