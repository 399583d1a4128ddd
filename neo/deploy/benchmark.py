"""Timing a deployed detector: latency, FPS, memory, GPU power and temperature.

:func:`benchmark_model` times any :class:`~neo.deploy.runtime.DeployedModel` (PyTorch eager,
ONNX Runtime, TensorRT, Torch-TensorRT) on frames already at its input size: warm-up runs, then
timed runs, each one batch taken in turn from the frames. Only the model call is timed
(preprocessing is not); on a GPU each run is bracketed by ``torch.cuda.synchronize``. Peak memory
is the CUDA allocator's peak on a GPU, else the growth of the process's resident memory from
before the warm-up to its peak during the runs; NVML (``nvidia-ml-py``) samples the GPU's power
and temperature while the timed runs go.

Results go to a CSV whose first columns are those of the seed's benchmark files
(:data:`SEED_COLUMNS`; ``trt_latency_ms`` is the median latency whatever the backend) followed by
neo's (:data:`EXTRA_COLUMNS`), and to a table on the console.
"""

from __future__ import annotations

import csv
import os
import platform
import resource
import statistics
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from neo.deploy.runtime import DeployedModel
from neo.utils.atomic import atomic_path

SEED_COLUMNS = (
    "engine_name",
    "engine_precision",
    "engine_batch",
    "engine_shape",
    "engine_size_MB",
    "trt_latency_ms",
    "power_mW",
    "gpu_temp_C",
    "frame_source_name",
)
SAMPLE_INTERVAL_S = 0.01


@dataclass
class BenchmarkResult:
    """One model's timing, in the CSV's column order.

    Attributes:
        engine_name: the model file's stem.
        engine_precision: ``fp32``, ``fp16`` or ``int8``.
        engine_batch: images per run.
        engine_shape: input shape ``BxCxHxW``.
        engine_size_MB: model file size in MiB.
        trt_latency_ms: median latency of one run (one batch), whatever the backend.
        power_mW: mean GPU power during the timed runs (NVML), ``None`` without a GPU.
        gpu_temp_C: highest GPU temperature during the timed runs, ``None`` without a GPU.
        frame_source_name: where the frames came from (video or folder stem, or ``random``).
        backend: ``pytorch``, ``onnxruntime``, ``tensorrt`` or ``torch_tensorrt``.
        latency_mean_ms: mean latency of one run.
        latency_p90_ms: 90th percentile latency of one run.
        latency_min_ms: fastest run.
        fps: images per second at the median latency (``batch / median``).
        peak_memory_MB: peak memory in MiB (see ``memory_source``).
        memory_source: ``cuda_allocator_peak`` (peak of PyTorch's CUDA allocator during the
            runs, weights included; TensorRT's own allocations are not in it) or
            ``process_rss_growth`` (peak resident memory of the process during the warm-up and
            timed runs, less the memory before them).
        device: the processor or GPU name.
        threads: CPU threads of the backend.
        runs: timed runs.
        warmup: warm-up runs.
        model_path: the model file.
        timestamp: when the timing ended (ISO 8601).
    """

    engine_name: str
    engine_precision: str
    engine_batch: int
    engine_shape: str
    engine_size_MB: float
    trt_latency_ms: float
    power_mW: float | None
    gpu_temp_C: float | None
    frame_source_name: str
    backend: str
    latency_mean_ms: float
    latency_p90_ms: float
    latency_min_ms: float
    fps: float
    peak_memory_MB: float
    memory_source: str
    device: str
    threads: int
    runs: int
    warmup: int
    model_path: str
    timestamp: str

    def row(self) -> dict[str, Any]:
        """The CSV row (rounded, empty where unknown)."""
        row = {}
        for key, value in asdict(self).items():
            if value is None:
                value = ""
            elif isinstance(value, float):
                value = round(value, 3)
            row[key] = value
        return row


COLUMNS = tuple(f.name for f in fields(BenchmarkResult))
EXTRA_COLUMNS = COLUMNS[len(SEED_COLUMNS) :]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def current_rss_bytes() -> int | None:
    """The process's resident memory now (Linux ``/proc``), ``None`` where unknown."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def peak_rss_bytes() -> int:
    """The process's peak resident memory so far (``getrusage``; KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if platform.system() == "Darwin" else peak * 1024


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def model_threads(model: DeployedModel) -> int:
    """CPU threads the backend uses (ONNX Runtime's setting, else PyTorch's)."""
    session = getattr(model, "session", None)
    if session is not None:
        configured = session.get_session_options().intra_op_num_threads
        if configured > 0:
            return configured
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return torch.get_num_threads()


class GpuMonitor:
    """Samples GPU power (mW) and temperature (°C) through NVML in a background thread.

    Does nothing (and reports ``None``) without a GPU or without NVML.

    Args:
        device: the CUDA device to watch (``None`` or a CPU device: nothing is sampled).
        interval_s: seconds between samples.
    """

    def __init__(self, device: torch.device | None, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.power_mw: list[float] = []
        self.temperature_c: list[float] = []
        self._handle = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if device is None or device.type != "cuda":
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            uuid = getattr(torch.cuda.get_device_properties(device), "uuid", None)
            if uuid is not None:
                self._handle = pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
            else:
                self._handle = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
            self._nvml = pynvml
        except Exception:  # no driver, no NVML (e.g. Jetson), or an unknown device
            self._handle = None

    @property
    def available(self) -> bool:
        """Whether NVML answers for the device."""
        return self._handle is not None

    def _sample(self) -> None:
        nvml = self._nvml
        while not self._stop.is_set():
            try:
                self.power_mw.append(float(nvml.nvmlDeviceGetPowerUsage(self._handle)))
                self.temperature_c.append(
                    float(nvml.nvmlDeviceGetTemperature(self._handle, nvml.NVML_TEMPERATURE_GPU))
                )
            except Exception:  # a reading NVML does not support on this GPU
                return
            self._stop.wait(self.interval_s)

    def __enter__(self) -> GpuMonitor:
        if self.available:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def power(self) -> float | None:
        """Mean power in mW over the samples."""
        return statistics.fmean(self.power_mw) if self.power_mw else None

    def temperature(self) -> float | None:
        """Highest temperature in °C over the samples."""
        return max(self.temperature_c) if self.temperature_c else None


class RssMonitor:
    """Samples the process's resident memory in a background thread (peak growth in bytes)."""

    def __init__(self, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.baseline = current_rss_bytes()
        self.peak = self.baseline or 0
        self._baseline_peak = peak_rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, current_rss_bytes() or 0)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssMonitor:
        if self.baseline is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def growth(self) -> int:
        """Peak resident memory during the block less the memory before it."""
        if self.baseline is None:
            return max(0, peak_rss_bytes() - self._baseline_peak)
        self.peak = max(self.peak, current_rss_bytes() or 0)
        return max(0, self.peak - self.baseline)


def model_file_size(path: Path) -> int:
    """Bytes of a model file, with the external-data files of an ONNX model."""
    size = path.stat().st_size
    if path.suffix.lower() != ".onnx":
        return size
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # an unreadable graph has no external data to count
        return size
    locations = {
        entry.value
        for init in model.graph.initializer
        if init.data_location == onnx.TensorProto.EXTERNAL
        for entry in init.external_data
        if entry.key == "location"
    }
    return size + sum(
        (path.parent / name).stat().st_size for name in locations if (path.parent / name).is_file()
    )


def _batch(images: Tensor, batch: int, number: int) -> Tensor:
    """Batch ``number`` of ``batch`` frames, taken in turn (wrapping around) from ``images``."""
    total = images.shape[0]
    return images[[(number * batch + j) % total for j in range(batch)]]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def benchmark_model(
    model: DeployedModel,
    images: Tensor,
    runs: int = 50,
    warmup: int = 10,
    frame_source_name: str = "random",
    batch: int | None = None,
) -> BenchmarkResult:
    """Times ``model`` on ``images`` (frames already at its input size).

    Args:
        model: the loaded model.
        images: float32 (N, 3, H, W) frames in [0, 1]; each run takes the next ``batch`` of them.
        runs: timed runs (at least 1).
        warmup: untimed runs before them.
        frame_source_name: the frames' origin, recorded in the CSV.
        batch: images per run (default: the model's fixed batch, else 1).

    Returns:
        The timing.

    Raises:
        ValueError: bad counts, or a batch the model was not exported for.
    """
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be at least 1 and warmup at least 0 (got {runs}, {warmup})")
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[0] < 1:
        raise ValueError(f"expected frames of shape (N, 3, H, W), got {tuple(images.shape)}")
    fixed = model.fixed_batch
    batch = batch or fixed or 1
    if fixed is not None and batch != fixed:
        raise ValueError(
            f"{model.path}: exported for batch {fixed}; benchmark it with --batch {fixed} "
            "(or export with --dynamic)"
        )
    device = model.device
    compute = getattr(model, "gpu", device)
    images = images.float()
    if compute.type == "cuda":
        _sync(compute)
        torch.cuda.reset_peak_memory_stats(compute)
    latencies = []
    with torch.no_grad(), RssMonitor() as rss:
        for number in range(warmup):
            model(_batch(images, batch, number).to(device))
        with GpuMonitor(compute) as gpu:
            for number in range(warmup, warmup + runs):
                x = _batch(images, batch, number).to(device)
                _sync(compute)
                started = time.perf_counter()
                model(x)
                _sync(compute)
                latencies.append((time.perf_counter() - started) * 1000.0)
    if compute.type == "cuda":
        peak, memory_source = torch.cuda.max_memory_allocated(compute), "cuda_allocator_peak"
    else:
        peak, memory_source = rss.growth(), "process_rss_growth"
    median = statistics.median(latencies)
    shape = (batch, 3, images.shape[2], images.shape[3])
    return BenchmarkResult(
        engine_name=model.name,
        engine_precision=model.precision,
        engine_batch=batch,
        engine_shape="x".join(str(v) for v in shape),
        engine_size_MB=model_file_size(model.path) / 2**20,
        trt_latency_ms=median,
        power_mW=gpu.power(),
        gpu_temp_C=gpu.temperature(),
        frame_source_name=frame_source_name,
        backend=model.backend,
        latency_mean_ms=statistics.fmean(latencies),
        latency_p90_ms=percentile(latencies, 90),
        latency_min_ms=min(latencies),
        fps=batch * 1000.0 / median,
        peak_memory_MB=peak / 2**20,
        memory_source=memory_source,
        device=device_name(compute),
        threads=model_threads(model),
        runs=runs,
        warmup=warmup,
        model_path=str(model.path),
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def write_csv(path: Path | str, results: list[BenchmarkResult], append: bool = True) -> Path:
    """Writes the results as CSV, atomically; ``append`` keeps the rows already in the file.

    Columns: :data:`SEED_COLUMNS` then :data:`EXTRA_COLUMNS`, then any other column an existing
    file has.

    Raises:
        ValueError: the existing file is not a readable CSV.
    """
    path = Path(path)
    rows: list[dict[str, Any]] = []
    columns = list(COLUMNS)
    if append and path.is_file():
        try:
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                rows = [dict(r) for r in reader]
                columns += [c for c in reader.fieldnames or [] if c not in columns]
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise ValueError(f"{path}: cannot append to it ({e})") from None
    rows += [r.row() for r in results]
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def save_latency_plot(path: Path | str, results: list[BenchmarkResult], title: str) -> Path:
    """Bars of each model's median latency (whisker to p90) as a PNG; returns its path."""
    from neo.utils.plots import latency_figure, save_figure

    names = [
        f"{r.engine_name} ({r.backend}, {r.engine_precision}, b{r.engine_batch})" for r in results
    ]
    figure = latency_figure(
        names, [r.trt_latency_ms for r in results], [r.latency_p90_ms for r in results], title
    )
    return save_figure(figure, Path(path))


def print_table(results: list[BenchmarkResult], title: str = "neo benchmark") -> None:
    """The results as a table on the console."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    headers = (
        "model",
        "backend",
        "precision",
        "shape",
        "MB",
        "median ms",
        "p90 ms",
        "FPS",
        "peak MB",
        "power W",
        "temp °C",
        "frames",
    )
    for header in headers:
        table.add_column(header, justify="left" if header in ("model", "backend") else "right")
    for r in results:
        table.add_row(
            r.engine_name,
            r.backend,
            r.engine_precision,
            r.engine_shape,
            f"{r.engine_size_MB:.1f}",
            f"{r.trt_latency_ms:.2f}",
            f"{r.latency_p90_ms:.2f}",
            f"{r.fps:.1f}",
            f"{r.peak_memory_MB:.0f}",
            f"{r.power_mW / 1000:.1f}" if r.power_mW is not None else "",
            f"{r.gpu_temp_C:.0f}" if r.gpu_temp_C is not None else "",
            r.frame_source_name,
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 160))
    console.print(table)
