"""``neo doctor``: what this installation has, what it lacks, and what to do about each gap.

Reports the versions of the pieces neo trains, evaluates and deploys with (torch, torchvision,
lightning, CUDA and cuDNN as PyTorch sees them, the GPUs, TensorRT, Torch-TensorRT, ModelOpt,
ONNX Runtime and its execution providers, NVML) and, for each missing piece, the line that
installs or enables it. The exit code is 1 when a piece every neo command needs is missing, else
0 (GPU-only pieces are optional on a CPU machine). ``tools/verify_installation.py`` is the same.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from dataclasses import dataclass
from typing import Any

from jsonargparse import ArgumentParser

TENSORRT_EXTRA = "uv sync --extra tensorrt"
REQUIRED = ("torch", "torchvision", "lightning", "timm", "albumentations", "faster-coco-eval",
            "onnx", "onnxruntime", "sigmf", "sahi")  # fmt: skip


@dataclass
class Check:
    """One line of the report."""

    name: str
    found: str | None  # version or description; None when missing
    advice: str = ""  # what to do when it is missing
    required: bool = False
    note: str = ""  # a limit of what was found


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cuda_checks() -> list[Check]:
    import torch

    build = torch.version.cuda
    checks = [
        Check(
            "CUDA (PyTorch build)",
            build,
            "this PyTorch is a CPU-only build; install the CUDA build on a GPU machine",
        )
    ]
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    checks.append(Check("cuDNN", str(cudnn) if cudnn else None, "comes with the CUDA build"))
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        checks.append(Check("GPUs", ", ".join(names)))
    else:
        checks.append(
            Check("GPUs", None, "PyTorch sees no GPU: training runs on the CPU; TensorRT is off")
        )
    return checks


def _nvml_check() -> Check:
    try:
        import pynvml

        pynvml.nvmlInit()
        driver = pynvml.nvmlSystemGetDriverVersion()
        pynvml.nvmlShutdown()
        driver = driver.decode() if isinstance(driver, bytes) else driver
        return Check("NVML (GPU power, memory)", f"driver {driver}")
    except ImportError:
        return Check("NVML (GPU power, memory)", None, "install nvidia-ml-py")
    except Exception as e:  # pynvml raises its own NVMLError kinds when there is no driver
        reason = " ".join(str(e).split()) or type(e).__name__
        return Check("NVML (GPU power, memory)", None, f"no NVIDIA driver here ({reason})")


def _onnxruntime_check() -> Check:
    try:
        import onnxruntime
    except ImportError:
        return Check("ONNX Runtime providers", None, "uv sync", required=True)
    providers = onnxruntime.get_available_providers()
    note = ""
    if "CUDAExecutionProvider" not in providers:
        note = "CPU only; onnxruntime-gpu adds the CUDA and TensorRT providers"
    return Check("ONNX Runtime providers", ", ".join(providers), note=note)


def checks() -> list[Check]:
    """Every check of the report, in order."""
    report = [Check("python", sys.version.split()[0], required=True)]
    report += [Check(name, _version(name), "uv sync", required=True) for name in REQUIRED]
    report += _cuda_checks()
    report.append(
        Check("TensorRT", _version("tensorrt"), f"{TENSORRT_EXTRA} (NVIDIA GPU machines only)")
    )
    report.append(
        Check("Torch-TensorRT", _version("torch-tensorrt"), f"{TENSORRT_EXTRA} (GPU only)")
    )
    report.append(Check("ModelOpt (INT8)", _version("nvidia-modelopt"), "uv sync"))
    report.append(_onnxruntime_check())
    report.append(_nvml_check())
    return report


def format_report(report: list[Check]) -> str:
    """The report as aligned lines: name, version or ``missing``, and the advice."""
    width = max(len(c.name) for c in report)
    lines = []
    for check in report:
        if check.found is None:
            line = "missing" + (f"  -> {check.advice}" if check.advice else "")
        else:
            line = check.found + (f"  ({check.note})" if check.note else "")
        lines.append(f"{check.name:<{width}}  {line}")
    return "\n".join(lines)


def doctor() -> int:
    """Print what this installation has and lacks, with what to do about each gap.

    Returns:
        1 when a piece every neo command needs is missing, else 0.
    """
    report = checks()
    print(format_report(report))
    missing = [c.name for c in report if c.required and c.found is None]
    if missing:
        print(f"neo doctor: missing {', '.join(missing)}; run `uv sync` in the repository")
        return 1
    return 0


def description() -> str:
    """One line (the help of ``neo doctor``)."""
    return "versions of torch, CUDA, TensorRT, ModelOpt, ONNX Runtime...; what to do about gaps"


def add_verbs(parser: ArgumentParser) -> None:
    """``neo doctor`` has no options."""


def run(config: Any) -> int:
    """Runs ``neo doctor``; returns its exit code."""
    return doctor()
