"""The contract as ONNX: dynamic sizes without fixed tables, outputs equal to PyTorch's."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from neo.deploy.contract import DeploySpec, read_sidecar, write_sidecar
from neo.deploy.onnx_export import check_input_size, export_onnx
from neo.tasks import FasterRCNNTask, RTDETRTask
from tests.helpers.training import TINY_RTDETR


def run_onnx(path, images: torch.Tensor) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": images.numpy()})


def canonical(boxes, scores, labels):
    """Rows in a fixed order: an untrained model has tied scores, ranked in either order."""
    boxes, scores, labels = (np.asarray(a) for a in (boxes, scores, labels))
    out = []
    for b, s, lab in zip(boxes, scores, labels):
        order = np.lexsort((b[:, 1].round(1), b[:, 0].round(1), lab, -s.round(4)))
        out.append((b[order], s[order], lab[order]))
    return [np.stack(parts) for parts in zip(*out)]


def assert_matches(task, outputs, images, box_atol=2e-3):
    boxes, scores, labels = canonical(*(t.numpy() for t in task(images)))
    got_boxes, got_scores, got_labels = canonical(*outputs)
    assert got_boxes.shape == boxes.shape
    np.testing.assert_allclose(got_scores, scores, atol=1e-4)
    np.testing.assert_allclose(got_boxes, boxes, atol=box_atol)
    np.testing.assert_array_equal(got_labels, labels)


def test_dynamic_rtdetr_runs_at_any_multiple_of_32_and_matches_pytorch(tmp_path):
    torch.manual_seed(0)
    task = RTDETRTask(3, **TINY_RTDETR).eval()
    path = tmp_path / "rtdetr.onnx"
    info = export_onnx(task, path, (192, 320), dynamic=True, metadata={"neo_contract": "{}"})
    assert info["dynamic_batch"] and info["dynamic_size"] and info["opset"] >= 17
    model = onnx.load(str(path))
    assert {p.key for p in model.metadata_props} == {"neo_contract"}
    # no initializer is sized by the example input: positional embeddings and anchors are
    # computed from the input's size (a 192x320 table would have 6*10=60 or 1260 rows)
    for init in model.graph.initializer:
        assert 60 not in init.dims and 1260 not in init.dims, init.name
    torch.manual_seed(1)
    for batch, height, width in [(1, 640, 640), (2, 384, 640), (1, 1088, 1920)]:
        images = torch.rand(batch, 3, height, width)
        assert_matches(task, run_onnx(path, images), images)
    assert not list(tmp_path.glob(".*"))  # no temporaries left


def test_faster_rcnn_exports_with_dynamic_size_and_fixed_batch(tmp_path):
    torch.manual_seed(0)
    task = FasterRCNNTask(
        num_classes=2, returned_layers=[3, 4], anchor_sizes=[[16], [32], [64]],
        rpn_proposals_test=20, score_threshold=0.0, detections_per_image=30,
    ).eval()
    path = tmp_path / "frcnn.onnx"
    info = export_onnx(task, path, (128, 192), batch=1, dynamic=True)
    assert info["tracer"] == "torchscript" and not info["dynamic_batch"] and info["dynamic_size"]
    torch.manual_seed(1)
    for height, width in [(128, 192), (224, 320)]:
        images = torch.rand(1, 3, height, width)
        outputs = run_onnx(path, images)
        assert outputs[0].shape == (1, 30, 4) and (outputs[2] >= 0).any()
        assert_matches(task, outputs, images)


@pytest.mark.parametrize("size", [(1080, 1920), (100, 64), (0, 32)])
def test_input_size_must_be_multiples_of_32(size):
    with pytest.raises(ValueError, match=r"--input_size .* multiples of 32"):
        check_input_size(size)


def test_sidecar_round_trip_and_bad_sidecars(tmp_path):
    task = RTDETRTask(2, **TINY_RTDETR)
    spec = DeploySpec("onnx", "int8", task.inference_spec, (1088, 1920), dynamic_size=True)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    write_sidecar(model, spec)
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["input"]["shape"] == [1, 3, "height", "width"]
    assert data["preprocessing"]["resize"] == "letterbox" and data["classes"][1]["label"] == 1
    back = read_sidecar(model)
    assert back.input_size == (1088, 1920) and back.precision == "int8"
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"m\.json: unreadable sidecar"):
        read_sidecar(model)
    (tmp_path / "m.json").unlink()
    with pytest.raises(FileNotFoundError, match="no sidecar"):
        read_sidecar(model)
    with pytest.raises(ValueError, match="unknown precision"):
        DeploySpec("onnx", "int4", task.inference_spec, (64, 64))
