"""The FP16 copy of an ONNX graph: heavy layers in FP16, the rest FP32, same outputs."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from neo.deploy.onnx_fp16 import convert_model_to_fp16, to_fp16_onnx, topological_order


def small_graph() -> onnx.ModelProto:
    """conv, relu, conv, + bias, resize x2, conv, then the tail: reduce-mean, * 100 (output)."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(size=(4, 4, 1, 1)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(size=(1, 4, 1, 1)).astype(np.float32), "bias"),
        numpy_helper.from_array(rng.normal(size=(4, 4, 1, 1)).astype(np.float32), "w3"),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        numpy_helper.from_array(np.array([100.0], np.float32), "hundred"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
        helper.make_node("Add", ["c2", "bias"], ["a"], name="add"),
        helper.make_node("Resize", ["a", "", "scales"], ["up"], name="resize", mode="nearest"),
        helper.make_node("Conv", ["up", "w3"], ["c3"], name="conv3"),
        helper.make_node("ReduceMean", ["c3"], ["m"], name="mean", axes=[2, 3], keepdims=0),
        helper.make_node("Mul", ["m", "hundred"], ["y"], name="scale"),
    ]
    graph = helper.make_graph(
        nodes, "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 4])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def node_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of each named node's first output."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    types.update({o.name: o.type.tensor_type.elem_type for o in inferred.graph.output})
    return {node.name: types.get(node.output[0]) for node in model.graph.node if node.name}


def test_heavy_layers_run_in_fp16_and_the_rest_stays_fp32():
    model = small_graph()
    converted, info = convert_model_to_fp16(model)
    onnx.checker.check_model(converted, full_check=True)
    types = node_types(converted)
    for name in ("conv1", "relu", "conv2", "add", "resize", "conv3"):
        assert types[name] == TensorProto.FLOAT16, name
    for name in ("mean", "scale"):  # the tail after the last heavy layer
        assert types[name] == TensorProto.FLOAT, name
    assert info["fp16_nodes"] == 6 and "ReduceMean" in info["fp32_op_types"]
    # Resize's scales stay FP32; inputs and outputs keep their types and names
    resize = next(n for n in converted.graph.node if n.name == "resize")
    assert resize.input[2] == "scales"
    assert converted.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert [o.name for o in converted.graph.output] == ["y"]
    # the original model is left as it was
    assert all(n.output[0] != "c1" + "__fp16" for n in model.graph.node)
    x = np.random.default_rng(1).random((2, 3, 8, 8), dtype=np.float32)
    reference, half = run(model, x), run(converted, x)
    assert half.dtype == np.float32
    np.testing.assert_allclose(half, reference, rtol=1e-2, atol=0.2)
    assert not np.array_equal(half, reference)  # it really computed in FP16


def test_keep_ops_and_keep_nodes_stay_fp32():
    model = small_graph()
    converted, info = convert_model_to_fp16(model, keep_ops={"Relu"}, keep_nodes=["^conv2$"])
    types = node_types(converted)
    assert types["conv1"] == TensorProto.FLOAT16
    assert types["relu"] == TensorProto.FLOAT and types["conv2"] == TensorProto.FLOAT
    # add and resize follow FP16 inputs only; with conv2 in FP32 they stay FP32 too
    assert types["add"] == TensorProto.FLOAT and types["resize"] == TensorProto.FLOAT
    assert types["conv3"] == TensorProto.FLOAT16 and info["fp16_nodes"] == 2
    onnx.checker.check_model(converted, full_check=True)


def test_unsorted_graphs_are_sorted_first():
    model = small_graph()
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))
    assert [n.name for n in topological_order(list(model.graph.node))] == [n.name for n in nodes]
    converted, _ = convert_model_to_fp16(model)
    onnx.checker.check_model(converted, full_check=True)


def test_file_errors_and_atomic_write(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"none\.onnx: no such ONNX model"):
        to_fp16_onnx(tmp_path / "none.onnx", tmp_path / "h.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match=r"bad\.onnx: not a readable ONNX model"):
        to_fp16_onnx(tmp_path / "bad.onnx", tmp_path / "h.onnx")
    assert not (tmp_path / "h.onnx").exists()
    onnx.save(small_graph(), str(tmp_path / "m.onnx"))
    info = to_fp16_onnx(tmp_path / "m.onnx", tmp_path / "h.onnx")
    assert info["fp16_nodes"] == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx", "h.onnx", "m.onnx"]
