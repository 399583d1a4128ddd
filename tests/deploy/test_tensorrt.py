"""TensorRT and Torch-TensorRT: one-line errors and nothing written without them or a GPU.

The build and run paths need an NVIDIA GPU; here the libraries are made absent (or present as
empty stand-ins with no GPU) so the checks run on any machine.
"""

from __future__ import annotations

import os
import sys
import types

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from neo.deploy import tensorrt
from neo.deploy.onnx_fp16 import to_fp16_onnx
from neo.deploy.runtime import load_model
from neo.deploy.tensorrt import (
    DeploymentUnavailable,
    build_engine,
    compile_torch_tensorrt,
    export_dynamic_shapes,
    graph_precision,
    profile_shapes,
    weights_only_loads,
)
from tests.deploy.tiny_onnx import tiny_onnx


@pytest.fixture
def no_backends(monkeypatch):
    """tensorrt and torch_tensorrt cannot be imported (whether or not they are installed)."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setitem(sys.modules, "torch_tensorrt", None)


@pytest.fixture
def backends_without_gpu(monkeypatch):
    """Both libraries import (as empty stand-ins) but PyTorch sees no GPU."""
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    monkeypatch.setitem(sys.modules, "torch_tensorrt", types.ModuleType("torch_tensorrt"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_build_engine_without_tensorrt_says_how_to_install_it(tmp_path, no_backends):
    onnx_path = tiny_onnx(tmp_path / "m.onnx")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DeploymentUnavailable) as error:
        build_engine(onnx_path, out / "m.engine", precision="fp32", input_size=(32, 64))
    message = one_line(error)
    assert "TensorRT is not installed" in message and "uv sync --extra tensorrt" in message
    assert list(out.iterdir()) == []
    assert isinstance(error.value, ValueError)  # the CLI prints it as one line and exits 1


def test_compile_torch_tensorrt_without_it_writes_nothing(tmp_path, no_backends):
    with pytest.raises(DeploymentUnavailable) as error:
        compile_torch_tensorrt(torch.nn.Identity(), tmp_path / "m.ep", "fp16", (32, 64))
    message = one_line(error)
    assert "Torch-TensorRT is not installed" in message and "uv sync --extra tensorrt" in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix,missing", [(".engine", "TensorRT"), (".ep", "Torch-TensorRT")])
def test_loading_an_exported_gpu_model_without_its_library(tmp_path, no_backends, suffix, missing):
    path = tmp_path / f"x{suffix}"
    path.write_bytes(b"not a model")
    before = sorted(tmp_path.iterdir())
    with pytest.raises(ValueError) as error:
        load_model(path)
    message = one_line(error)
    assert message.startswith(f"{missing} is not installed")
    assert "uv sync --extra tensorrt" in message
    assert sorted(tmp_path.iterdir()) == before


def test_without_a_gpu_the_message_says_so(tmp_path, backends_without_gpu):
    onnx_path = tiny_onnx(tmp_path / "m.onnx")
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "x.engine").write_bytes(b"x")
    for call in (
        lambda: build_engine(onnx_path, out / "m.engine", "fp32", (32, 64)),
        lambda: compile_torch_tensorrt(torch.nn.Identity(), out / "m.ep", "fp16", (32, 64)),
        lambda: load_model(tmp_path / "x.engine"),
    ):
        with pytest.raises(DeploymentUnavailable) as error:
            call()
        assert "needs an NVIDIA GPU" in one_line(error)
    assert list(out.iterdir()) == []


def test_engine_precision_must_match_the_graph(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    fp32 = tiny_onnx(tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="an FP32 graph; TensorRT 11 takes the precision"):
        build_engine(fp32, tmp_path / "m.engine", "fp16", (32, 64))
    with pytest.raises(ValueError, match="no QuantizeLinear/DequantizeLinear nodes"):
        build_engine(fp32, tmp_path / "m.engine", "int8", (32, 64))
    with pytest.raises(ValueError, match="unknown"):
        build_engine(fp32, tmp_path / "m.engine", "fp8", (32, 64))
    with pytest.raises(FileNotFoundError, match="no such ONNX model"):
        build_engine(tmp_path / "none.onnx", tmp_path / "m.engine", "fp32", (32, 64))
    assert not (tmp_path / "m.engine").exists()


def test_graph_precision(tmp_path):
    fp32 = tiny_onnx(tmp_path / "m.onnx")
    assert graph_precision(fp32) == "fp32"
    to_fp16_onnx(fp32, tmp_path / "h.onnx")
    assert graph_precision(tmp_path / "h.onnx") == "fp16"
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
         helper.make_tensor("z", TensorProto.INT8, [], [0])],
    )
    onnx.save(helper.make_model(graph), str(tmp_path / "q.onnx"))
    assert graph_precision(tmp_path / "q.onnx") == "int8"
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        graph_precision(tmp_path / "bad.onnx")


def test_profile_covers_only_the_dynamic_dimensions():
    shapes = profile_shapes((-1, 3, -1, -1), (384, 640), batch=2, max_size=(1088, 1920))
    assert shapes == {"min": (1, 3, 64, 64), "opt": (2, 3, 384, 640), "max": (16, 3, 1088, 1920)}
    fixed_batch = profile_shapes((4, 3, -1, -1), (384, 640), batch=4)
    assert fixed_batch["min"] == (4, 3, 64, 64) and fixed_batch["max"] == (4, 3, 384, 640)
    assert profile_shapes((-1, 3, 32, 32), (32, 32), 1, max_batch=8)["max"] == (8, 3, 32, 32)


def test_export_dynamic_shapes():
    assert export_dynamic_shapes(False, False, 16) is None
    shapes = export_dynamic_shapes(True, True, 16)["images"]
    assert set(shapes) == {0, 2, 3} and shapes[0].max == 16
    assert set(export_dynamic_shapes(True, False, 16)["images"]) == {2, 3}


def test_programs_load_without_unpickling(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    module = torch.nn.Linear(3, 2).eval()
    x = torch.rand(4, 3)
    torch.export.save(torch.export.export(module, (x,)), str(tmp_path / "p.ep"))
    program = tensorrt._load_program(tmp_path / "p.ep")
    assert torch.allclose(program.module()(x), module(x))
    assert os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD") == "1"  # restored
    assert "TORCH_FORCE_WEIGHTS_ONLY_LOAD" not in os.environ
    with weights_only_loads():
        assert os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] == "1"
        assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in os.environ


def test_int8_torch_tensorrt_needs_a_quantised_task(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_tensorrt", types.ModuleType("torch_tensorrt"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    with pytest.raises(ValueError, match="no ModelOpt quantizers"):
        compile_torch_tensorrt(torch.nn.Conv2d(3, 3, 1), "x.ep", "int8", (32, 64))
