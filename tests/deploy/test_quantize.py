"""INT8 Q/DQ models from ONNX Runtime and ModelOpt run in ONNX Runtime close to FP32."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import Tensor, nn

from neo.deploy.onnx_export import export_onnx
from neo.deploy.quantize import (
    KEEP_FLOAT,
    calibration_batches,
    float_nodes,
    quantize_int8,
)
from neo.tasks import RTDETRTask
from neo.tasks.detection import DetectionTask
from tests.helpers.training import TINY_RTDETR

SIZE = (64, 96)


class TinyTask(DetectionTask):
    """Four detections per image from two convolutions, a score head and a box head."""

    def __init__(self, tracer: str = "torchscript") -> None:
        super().__init__(num_classes=2)
        self.export_tracer = tracer
        torch.manual_seed(0)
        self.model = nn.Module()
        self.model.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, 2, 1), nn.ReLU()
        )
        self.model.dec_score_head = nn.Linear(16, 2)
        self.model.box = nn.Linear(16, 4)
        self.model.queries = nn.Parameter(torch.rand(4, 16) + 0.5)

    @property
    def max_detections(self) -> int:
        return 4

    def run_model(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        queries = self.model.body(images).mean((2, 3))[:, None] * self.model.queries
        scores, labels = self.model.dec_score_head(queries).sigmoid().max(-1)
        boxes = self.model.box(queries).sigmoid() * 32
        return boxes, scores, labels


def frames(count: int = 8, seed: int = 1) -> Tensor:
    """Smooth, image-like inputs (random noise would make every range the same)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 4, 6, generator=generator)
    return nn.functional.interpolate(coarse, size=SIZE, mode="bilinear")


def run(path, images: Tensor) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": images.numpy()})


def op_types(path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def quantized_weights(path) -> set[str]:
    """Names of the weighted nodes whose weight comes through a DequantizeLinear (INT8)."""
    graph = onnx.load(str(path)).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return {
        n.name
        for n in graph.node
        if n.op_type in ("Conv", "Gemm", "MatMul") and n.input[1] in dequantized
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    task = TinyTask().eval()
    path = tmp_path_factory.mktemp("q") / "fp32.onnx"
    export_onnx(task, path, SIZE, batch=1, dynamic=True)
    return task, path


def test_ort_int8_has_qdq_heads_in_float_and_follows_fp32(tiny, tmp_path):
    _, fp32 = tiny
    out = tmp_path / "int8.onnx"
    info = quantize_int8(fp32, out, frames(), "ort")
    assert info["method"] == "ort" and info["algorithm"] == "percentile" and info["frames"] == 8
    assert info["float_nodes"] == 1 and info["kept_float"] == list(KEEP_FLOAT)
    assert {"QuantizeLinear", "DequantizeLinear"} <= op_types(out)
    quantized = quantized_weights(out)
    assert any("body" in name for name in quantized)
    assert not any("dec_score_head" in name for name in quantized)
    images = frames(2, seed=5)
    reference, result = run(fp32, images[:1]), run(out, images[:1])
    assert np.abs(result[1] - reference[1]).max() < 0.05
    assert np.abs(result[0] - reference[0]).max() < 1.5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["int8.onnx"]  # nothing else left


def test_keep_float_empty_quantizes_the_heads_and_minmax_works(tiny, tmp_path):
    _, fp32 = tiny
    out = tmp_path / "int8.onnx"
    info = quantize_int8(
        fp32, out, frames(), "ort", algorithm="minmax", keep_float=[], metadata={"k": "int8"}
    )
    assert info["float_nodes"] == 0 and info["algorithm"] == "minmax"
    assert {p.key: p.value for p in onnx.load(str(out)).metadata_props}["k"] == "int8"
    assert any("dec_score_head" in name for name in quantized_weights(out))


def test_fixed_batch_graph_is_calibrated_in_whole_batches(tmp_path):
    task = TinyTask().eval()
    fp32 = tmp_path / "fp32.onnx"
    export_onnx(task, fp32, SIZE, batch=2)
    out = tmp_path / "int8.onnx"
    quantize_int8(fp32, out, frames(5), "ort")
    assert run(out, frames(2))[1].shape == (2, 4)
    batches = calibration_batches(frames(5), 2)
    assert [b.shape[0] for b in batches] == [2, 2, 2]
    assert np.array_equal(batches[-1][1], batches[0][0])  # topped up from the first frames


def test_bad_arguments_are_one_line_errors(tiny, tmp_path):
    _, fp32 = tiny
    with pytest.raises(ValueError, match=r"--calib\.method int4"):
        quantize_int8(fp32, tmp_path / "x.onnx", frames(), "int4")
    with pytest.raises(ValueError, match=r"--calib\.algorithm entropy"):
        quantize_int8(fp32, tmp_path / "x.onnx", frames(), "ort", algorithm="entropy")
    with pytest.raises(ValueError, match="non-empty"):
        quantize_int8(fp32, tmp_path / "x.onnx", frames()[:0], "ort")
    with pytest.raises(ValueError, match="needs the task"):
        quantize_int8(fp32, tmp_path / "x.onnx", frames(), "modelopt")
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("tracer", ["dynamo", "torchscript"])
def test_modelopt_int8_exports_qdq_with_either_tracer(tracer, tmp_path):
    task = TinyTask(tracer).eval()
    fp32 = tmp_path / "fp32.onnx"
    export_onnx(task, fp32, SIZE, batch=1, dynamic=True)
    out = tmp_path / "int8.onnx"
    info = quantize_int8(fp32, out, frames(), "modelopt", task=task, input_size=SIZE, dynamic=True)
    assert info["method"] == "modelopt" and info["quantizers"] > 0
    assert {"QuantizeLinear", "DequantizeLinear"} <= op_types(out)
    assert not any("quantizer" in name for name, _ in task.named_modules())  # task unchanged
    images = frames(1, seed=5)
    assert np.abs(run(out, images)[1] - run(fp32, images)[1]).max() < 0.05
    if tracer == "dynamo":  # dynamic batch and size kept
        assert run(out, torch.rand(3, 3, 96, 128))[1].shape == (3, 4)


@pytest.mark.slow
def test_rtdetr_heads_and_sampling_stay_in_float_in_the_exported_graph(tmp_path):
    torch.manual_seed(0)
    task = RTDETRTask(2, **TINY_RTDETR).eval()
    fp32 = tmp_path / "fp32.onnx"
    export_onnx(task, fp32, SIZE, dynamic=True)
    graph = onnx.load(str(fp32)).graph
    kept = float_nodes(onnx.load(str(fp32)))
    weighted = sum(n.op_type in ("MatMul", "Gemm", "Conv") for n in graph.node)
    assert 0 < len(kept) < weighted
    out = tmp_path / "int8.onnx"
    info = quantize_int8(fp32, out, frames(4), "ort", algorithm="minmax")
    assert info["float_nodes"] == len(kept)
    assert not set(kept) & quantized_weights(out)
    reference, result = run(fp32, frames(2, seed=5)), run(out, frames(2, seed=5))
    assert result[1].shape == reference[1].shape
    assert np.abs(result[1][:, 0] - reference[1][:, 0]).max() < 0.1
