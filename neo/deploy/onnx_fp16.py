"""An FP16 copy of an FP32 ONNX graph, for TensorRT's strongly typed networks.

TensorRT 11 runs every tensor in the type the graph gives it (the FP16 builder flag is gone), so
an FP16 engine needs a graph whose heavy layers are FP16. The rewrite here is deliberately
conservative: convolutions and matrix products run in FP16, and so do the cheap operators
(activations, additions, pooling, reshapes, sampling) that sit between FP16 tensors; everything
else stays FP32 with its original tensor names and types, so the graph stays valid whatever the
exporter produced. Kept in FP32: normalisations, softmax, reductions, exponentials and
logarithms, division, the post-processing after the last heavy layer (box decoding, top-k), and
anything named in ``keep_ops`` / ``keep_nodes``. Inputs and outputs keep their FP32 types.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from neo.utils.atomic import atomic_path

# op -> positions of its inputs that take the node's float type (None: every float input)
HEAVY_OPS: dict[str, tuple[int, ...] | None] = {
    "Conv": (0, 1, 2),
    "ConvTranspose": (0, 1, 2),
    "MatMul": (0, 1),
    "Gemm": (0, 1, 2),
}
FOLLOW_OPS: dict[str, tuple[int, ...] | None] = {
    "Add": None,
    "Sub": None,
    "Mul": None,
    "Relu": None,
    "LeakyRelu": None,
    "Sigmoid": None,
    "HardSigmoid": None,
    "HardSwish": None,
    "Tanh": None,
    "Erf": None,
    "Clip": None,
    "MaxPool": (0,),
    "AveragePool": (0,),
    "GlobalAveragePool": (0,),
    "GlobalMaxPool": (0,),
    "Resize": (0,),
    "GridSample": (0, 1),
    "Concat": None,
    "Transpose": (0,),
    "Reshape": (0,),
    "Flatten": (0,),
    "Squeeze": (0,),
    "Unsqueeze": (0,),
    "Slice": (0,),
    "Split": (0,),
    "Expand": (0,),
    "Tile": (0,),
    "Gather": (0,),
    "Identity": (0,),
    "Pad": (0, 2),
}
FP16_MAX = float(np.finfo(np.float16).max)
# ONNX element types of float tensors other than FLOAT: a node using them is left as it is
OTHER_FLOATS = (10, 11, 16)  # FLOAT16, DOUBLE, BFLOAT16
SUFFIX = "__fp16"


def _float_positions(node: Any) -> tuple[int, ...] | None:
    positions = HEAVY_OPS.get(node.op_type, FOLLOW_OPS.get(node.op_type))
    if positions is None:
        return tuple(range(len(node.input)))
    return positions


def _subgraph_names(node: Any) -> set[str]:
    """Every tensor name a node's subgraphs (``If``/``Loop`` bodies) mention."""
    import onnx

    names: set[str] = set()
    for attribute in node.attribute:
        graphs = []
        if attribute.type == onnx.AttributeProto.GRAPH:
            graphs.append(attribute.g)
        elif attribute.type == onnx.AttributeProto.GRAPHS:
            graphs.extend(attribute.graphs)
        for graph in graphs:
            for inner in graph.node:
                names.update(inner.input)
                names |= _subgraph_names(inner)
    return names


def _has_subgraph(node: Any) -> bool:
    import onnx

    return any(
        a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute
    )


def tensor_types(model: Any) -> dict[str, int]:
    """Element type of every tensor whose type the graph states or ONNX shape inference finds."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference is best effort: unknown types keep their nodes in FP32
        inferred = model
    graph = inferred.graph
    types = {init.name: init.data_type for init in graph.initializer}
    for info in (*graph.input, *graph.output, *graph.value_info):
        elem = info.type.tensor_type.elem_type
        if elem:
            types[info.name] = elem
    return types


def _tail_nodes(nodes: list[Any], outputs: Iterable[str]) -> set[int]:
    """Nodes that reach a graph output without crossing a heavy layer (the post-processing)."""
    producer = {name: i for i, node in enumerate(nodes) for name in node.output if name}
    tail: set[int] = set()
    stack = [producer[name] for name in outputs if name in producer]
    while stack:
        index = stack.pop()
        if index in tail or nodes[index].op_type in HEAVY_OPS:
            continue
        tail.add(index)
        stack.extend(producer[name] for name in nodes[index].input if name in producer)
    return tail


def choose_fp16_nodes(
    model: Any, keep_ops: Collection[str] = (), keep_nodes: Collection[str] = ()
) -> set[int]:
    """Indices of the nodes (in graph order) that the FP16 copy runs in FP16.

    Args:
        model: the FP32 ``onnx.ModelProto`` (nodes in topological order).
        keep_ops: operator types kept in FP32 besides the defaults.
        keep_nodes: regular expressions; nodes whose name matches one stay in FP32.
    """
    import onnx

    graph = model.graph
    nodes = list(graph.node)
    types = tensor_types(model)
    tail = _tail_nodes(nodes, [o.name for o in graph.output])
    patterns = [re.compile(p) for p in keep_nodes]
    chosen: set[int] = set()
    fp16_tensors: set[str] = set()
    for index, node in enumerate(nodes):
        heavy = node.op_type in HEAVY_OPS
        if (
            not (heavy or node.op_type in FOLLOW_OPS)
            or node.op_type in keep_ops
            or index in tail
            or _has_subgraph(node)
            or any(p.search(node.name) for p in patterns)
        ):
            continue
        positions = _float_positions(node) or ()
        data = [node.input[i] for i in positions if i < len(node.input) and node.input[i]]
        data_types = [types.get(name) for name in data]
        if any(t is None or t in OTHER_FLOATS for t in data_types):
            continue
        floats = [name for name, t in zip(data, data_types) if t == onnx.TensorProto.FLOAT]
        outputs = [name for name in node.output if name]
        if not floats:
            continue
        if not outputs or any(types.get(name) != onnx.TensorProto.FLOAT for name in outputs):
            continue
        if not heavy and not any(name in fp16_tensors for name in floats):
            continue
        chosen.add(index)
        fp16_tensors.update(outputs)
    return chosen


def topological_order(nodes: list[Any]) -> list[Any]:
    """The nodes sorted so that each comes after the producers of its inputs (stable)."""
    producer = {name: i for i, node in enumerate(nodes) for name in node.output if name}
    needs = [
        {producer[name] for name in (*node.input, *_subgraph_names(node)) if name in producer} - {i}
        for i, node in enumerate(nodes)
    ]
    users: dict[int, list[int]] = {}
    for i, deps in enumerate(needs):
        for j in deps:
            users.setdefault(j, []).append(i)
    waiting = [len(deps) for deps in needs]
    ready = [i for i, count in enumerate(waiting) if count == 0]
    order: list[int] = []
    while ready:
        ready.sort(reverse=True)
        index = ready.pop()
        order.append(index)
        for user in users.get(index, []):
            waiting[user] -= 1
            if waiting[user] == 0:
                ready.append(user)
    if len(order) != len(nodes):
        raise ValueError("the ONNX graph has a cycle")
    return [nodes[i] for i in order]


def convert_model_to_fp16(
    model: Any, keep_ops: Collection[str] = (), keep_nodes: Collection[str] = ()
) -> tuple[Any, dict[str, Any]]:
    """The FP16 copy of an FP32 ``onnx.ModelProto`` and what was converted.

    Args:
        model: the FP32 model (not modified).
        keep_ops: operator types kept in FP32 besides the defaults.
        keep_nodes: regular expressions on node names kept in FP32.

    Returns:
        ``(model, info)``; ``info`` counts the FP16 nodes, the casts added and the operator
        types left in FP32.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    nodes = topological_order(list(graph.node))
    del graph.node[:]
    graph.node.extend(nodes)
    chosen = choose_fp16_nodes(model, keep_ops, keep_nodes)
    types = tensor_types(model)
    initializers = {init.name: init for init in graph.initializer}
    taken = {name for node in nodes for name in (*node.input, *node.output)} | set(initializers)
    taken |= {node.name for node in nodes}

    def unique(name: str) -> str:
        candidate, count = name, 0
        while candidate in taken:
            count += 1
            candidate = f"{name}_{count}"
        taken.add(candidate)
        return candidate

    half_of: dict[str, str] = {}
    for index in chosen:
        for name in nodes[index].output:
            if name:
                half_of[name] = unique(name + SUFFIX)
    needed_fp32 = {o.name for o in graph.output}
    for index, node in enumerate(nodes):
        positions = set(_float_positions(node) or ()) if index in chosen else set()
        needed_fp32.update(name for i, name in enumerate(node.input) if name and i not in positions)
        needed_fp32 |= _subgraph_names(node)

    new_nodes: list[Any] = []
    new_initializers: list[Any] = []
    casts = 0
    for index, node in enumerate(nodes):
        if index not in chosen:
            new_nodes.append(node)
            continue
        positions = _float_positions(node) or ()
        for i in positions:
            if i >= len(node.input) or types.get(node.input[i]) != onnx.TensorProto.FLOAT:
                continue
            name = node.input[i]
            if name not in half_of:
                half_of[name] = unique(name + SUFFIX)
                if name in initializers:
                    values = numpy_helper.to_array(initializers[name])
                    values = np.clip(values, -FP16_MAX, FP16_MAX).astype(np.float16)
                    new_initializers.append(numpy_helper.from_array(values, half_of[name]))
                else:
                    new_nodes.append(
                        helper.make_node(
                            "Cast",
                            [name],
                            [half_of[name]],
                            name=unique(f"{name}_to_fp16"),
                            to=onnx.TensorProto.FLOAT16,
                        )
                    )
                    casts += 1
            node.input[i] = half_of[name]
        outputs = list(node.output)
        for i, name in enumerate(outputs):
            if name:
                node.output[i] = half_of[name]
        new_nodes.append(node)
        for name in outputs:
            if name and name in needed_fp32:
                new_nodes.append(
                    helper.make_node(
                        "Cast",
                        [half_of[name]],
                        [name],
                        name=unique(f"{name}_to_fp32"),
                        to=onnx.TensorProto.FLOAT,
                    )
                )
                casts += 1
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(new_initializers)
    produced = {name for node in new_nodes for name in node.output}
    produced |= {i.name for i in graph.input} | {i.name for i in graph.initializer}
    kept_info = [info for info in graph.value_info if info.name in produced]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    used = {name for node in new_nodes for name in node.input} | needed_fp32
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:
        graph.initializer.remove(init)
    fp32_ops = sorted({node.op_type for i, node in enumerate(nodes) if i not in chosen})
    info = {
        "fp16_nodes": len(chosen),
        "nodes": len(nodes),
        "casts_added": casts,
        "fp32_op_types": fp32_ops,
        "method": "neo.deploy.onnx_fp16",
    }
    return model, info


def to_fp16_onnx(
    source: Path | str,
    path: Path | str,
    keep_ops: Collection[str] = (),
    keep_nodes: Collection[str] = (),
) -> dict[str, Any]:
    """Writes the FP16 copy of the FP32 ONNX model ``source`` at ``path`` (atomically, checked).

    Args:
        source: the FP32 ``.onnx`` file.
        path: the FP16 ``.onnx`` file to write.
        keep_ops: operator types kept in FP32 besides the defaults (e.g. ``GridSample``).
        keep_nodes: regular expressions on node names kept in FP32 (e.g. a detection head).

    Returns:
        What :func:`convert_model_to_fp16` reports.

    Raises:
        FileNotFoundError: no ``source``.
        ValueError: ``source`` is not a readable ONNX model.
    """
    import onnx

    source, path = Path(source), Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such ONNX model")
    try:
        model = onnx.load(str(source))
    except Exception as e:  # protobuf raises its own DecodeError
        raise ValueError(f"{source}: not a readable ONNX model ({e})") from None
    converted, info = convert_model_to_fp16(model, keep_ops, keep_nodes)
    onnx.checker.check_model(converted)
    with atomic_path(path) as tmp:
        onnx.save(converted, str(tmp))
    return info
