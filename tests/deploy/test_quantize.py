"""INT8 Q/DQ models from ONNX Runtime and ModelOpt run in ONNX Runtime close to FP32."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from neo.deploy.onnx_export import export_onnx
from neo.deploy.quantize import float_nodes, quantize_int8
from neo.tasks import RTDETRTask

TINY_RTDETR = dict(
    variant="r18", num_queries=20, num_top_queries=25, hidden_dim=32, nhead=4,
    num_decoder_layers=1, decoder_ffn_dim=64, encoder_ffn_dim=64, num_denoising=10,
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    task = RTDETRTask(2, **TINY_RTDETR).eval()
    path = tmp_path_factory.mktemp("q") / "fp32.onnx"
    export_onnx(task, path, (64, 96), dynamic=True)
    torch.manual_seed(1)
    return task, path, torch.rand(8, 3, 64, 96)


def run(path, images):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": images.numpy()})


def op_types(path):
    return {n.op_type for n in onnx.load(str(path)).graph.node}


@pytest.mark.parametrize("method", ["ort", "modelopt"])
def test_int8_model_has_qdq_nodes_and_follows_fp32(exported, method, tmp_path):
    task, fp32, frames = exported
    out = tmp_path / "int8.onnx"
    info = quantize_int8(fp32, out, frames, method, task=task, input_size=(64, 96), dynamic=True)
    assert info["method"] == method
    assert {"QuantizeLinear", "DequantizeLinear"} <= op_types(out)
    reference = run(fp32, frames[:2])
    quantized = run(out, frames[:2])
    assert quantized[1].shape == reference[1].shape
    # the best score of each image moves little
    assert np.abs(quantized[1][:, 0] - reference[1][:, 0]).max() < 0.1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_detection_heads_stay_in_float(exported):
    _, fp32, _ = exported
    graph = onnx.load(str(fp32)).graph
    kept = float_nodes(onnx.load(str(fp32)))
    assert kept  # score/box heads and sampling offsets are named in the graph
    assert len(kept) < sum(n.op_type in ("MatMul", "Gemm", "Conv") for n in graph.node)


def test_unknown_method_is_an_error(exported, tmp_path):
    _, fp32, frames = exported
    with pytest.raises(ValueError, match=r"--calib\.method int4"):
        quantize_int8(fp32, tmp_path / "x.onnx", frames, "int4")
