"""``neo rf detect``: tiny checkpoints and their ONNX export on a tiny synthetic recording."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import lightning
import pytest
import sigmf
import torch

from neo.cli import main
from neo.deploy.contract import DeploySpec, write_sidecar
from neo.deploy.onnx_export import export_onnx
from neo.inference.loading import load_detector
from neo.inference.multi_model import MultiModelDetector
from neo.rf import synth_rf
from neo.tasks import FasterRCNNTask
from neo.utils.checkpoint_io import CheckpointError

SPECTROGRAM = {"nfft": 128, "hop": 64, "floor_percentile": 10.0, "chunk_duration_s": 0.2}


def tiny_checkpoint(
    path: Path, labels: list[str], image_size: int, chunk_duration_s: float = 0.2
) -> Path:
    """A random Faster R-CNN saved as training saves it: spec from the data module's answers."""
    torch.manual_seed(len(labels))
    task = FasterRCNNTask(
        num_classes=len(labels), returned_layers=[3, 4], anchor_sizes=[[16], [32], [64]],
        rpn_proposals_test=20, detections_per_image=10, score_threshold=0.0,
    )
    settings = {**SPECTROGRAM, "image_size": image_size, "chunk_duration_s": chunk_duration_s}
    datamodule = SimpleNamespace(
        categories=[{"id": i + 1, "name": n} for i, n in enumerate(labels)],
        inference_preprocessing=lambda: {
            "input_size": (image_size, image_size), "resize": "stretch", "spectrogram": settings,
        },
    )
    task._trainer = SimpleNamespace(datamodule=datamodule)
    task.setup("fit")
    hparams = {**task.hparams, "_class_path": "neo.tasks.FasterRCNNTask"}  # as LightningCLI does
    checkpoint = {"state_dict": task.state_dict(), "hyper_parameters": hparams,
                  "pytorch-lightning_version": lightning.__version__}
    task.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("rf")
    synth_rf(root / "sigmf", num_recordings=1, duration_s=0.4, sample_rate=1e5,
             bursts_per_second=10, burst_duration_s=(0.02, 0.05))
    a = tiny_checkpoint(root / "a.ckpt", ["chirp", "tone"], 64)
    b = tiny_checkpoint(root / "b.ckpt", ["psk"], 32)
    return root, root / "sigmf" / "synth_000.sigmf-meta", [a, b]


def test_checkpoints_load_with_their_classes_and_sizes(setup):
    _, _, (a, b) = setup
    first, second = load_detector(a), load_detector(b)
    assert isinstance(first.task, FasterRCNNTask) and not first.task.training
    assert (first.spec.class_names, first.spec.input_size) == (["chirp", "tone"], (64, 64))
    assert (second.spec.class_names, second.spec.input_size) == (["psk"], (32, 32))
    assert second.spec.category_ids == [1] and second.spec.spectrogram["nfft"] == 128
    assert first.task.class_names == ["chirp", "tone"] and first.name == "a"


def test_detect_writes_json_and_a_readable_sigmf(setup):
    root, meta, models = setup
    out = root / "out"
    code = main(["rf", "detect", "--models", *map(str, models), "--input", str(meta),
                 "--out", str(out), "--score_threshold", "0.0", "--deadline_ms", "1e9"])
    assert code == 0
    result = json.loads((out / "synth_000.detections.json").read_text())
    assert result["chunks"] == 2 and result["missed_deadlines"] == 0
    assert result["settings"]["nfft"] == 128 and result["settings"]["image_size"] == 64
    detections = result["detections"]
    assert detections, "a random model with score threshold 0 still returns boxes"
    assert {d["model_id"] for d in detections} <= {0, 1}
    assert {d["label"] for d in detections} <= {"chirp", "tone", "psk"}
    lo, hi = 2.4e9 - 5e4, 2.4e9 + 5e4
    for d in detections:
        assert d["chunk"] in (0, 1) and 0 <= d["box"][0] <= d["box"][2] <= 64
        assert d["chunk"] * 20000 <= d["sample_start"] < (d["chunk"] + 1) * 20000
        assert lo - 1 <= d["freq_lower_edge"] <= d["freq_upper_edge"] <= hi + 1
    handle = sigmf.fromfile(str(out / "synth_000.sigmf-meta"))
    annotations = handle.get_annotations()
    assert len(annotations) == len(detections)
    assert {a["core:label"] for a in annotations} == {d["label"] for d in detections}
    assert handle.read_samples(0, 10).shape == (10,)  # the data file is linked, not copied
    assert not (out / "synth_000.sigmf-data").resolve().is_relative_to(out.resolve())


def test_every_chunk_misses_a_zero_deadline(setup, capsys):
    root, meta, models = setup
    main(["rf", "detect", "--models", json.dumps([str(models[1])]), "--input", str(meta),
          "--out", str(root / "out0"), "--deadline_ms", "0"])
    result = json.loads((root / "out0" / "synth_000.detections.json").read_text())
    assert result["missed_deadlines"] == result["chunks"] == 2
    assert "2 of 2 chunks missed the 0 ms deadline" in capsys.readouterr().out


def test_bad_recording_is_a_one_line_error(tmp_path, capsys, setup):
    _, _, models = setup
    bad = tmp_path / "x.sigmf-meta"
    bad.write_text("{}")
    assert main(["rf", "detect", "--models", json.dumps([str(models[0])]), "--input", str(bad),
                 "--out", str(tmp_path / "o")]) == 1
    assert "x.sigmf-meta: not valid SigMF metadata" in capsys.readouterr().err
    assert main(["rf", "detect", "--models", str(models[0]), "--input", str(setup[1]),
                 "--out", str(setup[1].parent)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("neo: error:") and "other than the recording's own folder" in line


def test_chunk_duration_comes_from_the_checkpoint(setup):
    root, meta, _ = setup
    short = tiny_checkpoint(root / "short.ckpt", ["psk"], 32, chunk_duration_s=0.1)
    out = root / "out_short"
    args = ["rf", "detect", "--models", str(short), "--input", str(meta), "--deadline_ms", "1e9"]
    assert main([*args, "--out", str(out)]) == 0
    result = json.loads((out / "synth_000.detections.json").read_text())
    assert result["settings"]["chunk_duration_s"] == 0.1 and result["chunks"] == 4
    with pytest.warns(UserWarning, match=r"chunk_duration_s 0.2 \(given\) differs from the 0.1"):
        main([*args, "--out", str(root / "out_long"), "--chunk_duration_s", "0.2"])
    result = json.loads((root / "out_long" / "synth_000.detections.json").read_text())
    assert result["chunks"] == 2


def test_a_second_model_trained_on_other_chunks_is_named(setup):
    root, meta, (a, _) = setup
    short = tiny_checkpoint(root / "short2.ckpt", ["psk"], 32, chunk_duration_s=0.1)
    with pytest.warns(UserWarning, match="differs from the 0.1 model short2 was trained with"):
        main(["rf", "detect", "--models", str(a), str(short), "--input", str(meta),
              "--out", str(root / "out_mixed"), "--deadline_ms", "1e9"])


def test_a_checkpoint_without_inference_spec_is_a_one_line_error(setup, tmp_path, capsys):
    _, meta, (a, _) = setup
    old = torch.load(a, weights_only=True)
    del old["neo_inference_spec"]
    torch.save(old, tmp_path / "old.ckpt")
    with pytest.raises(CheckpointError, match=r"old\.ckpt: no inference spec"):
        load_detector(tmp_path / "old.ckpt")
    code = main(["rf", "detect", "--models", str(tmp_path / "old.ckpt"), "--input", str(meta),
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and "no inference spec" in err and len(err.strip().splitlines()) == 1


def onnx_copy(checkpoint: Path, path: Path, size: int) -> Path:
    """The checkpoint's model exported to ONNX (FP32, dynamic height and width) with its sidecar."""
    task = load_detector(checkpoint).task
    info = export_onnx(task, path, (size, size), batch=1, dynamic=True)
    spec = DeploySpec(
        format="onnx", precision="fp32", inference=task.inference_spec, input_size=(size, size),
        batch=1, dynamic_batch=info["dynamic_batch"], dynamic_size=info["dynamic_size"],
        source=str(checkpoint), extra=info,
    )
    write_sidecar(path, spec)
    return path


@pytest.fixture(scope="module")
def onnx_model(setup):
    root, _, (a, _) = setup
    return onnx_copy(a, root / "exported" / "a.onnx", 64)


def test_an_onnx_export_finds_what_its_checkpoint_finds(setup, onnx_model):
    root, meta, (a, _) = setup
    torch.manual_seed(0)
    image = torch.rand(96, 96)
    # IoU threshold 1: the two models' identical boxes are not merged away
    detector = MultiModelDetector.from_paths([a, onnx_model], score_threshold=0.0,
                                             iou_threshold=1.0)
    assert [m.backend for m in detector.models] == ["pytorch", "onnxruntime"]
    found = detector(image)
    per_model = [sorted((label, box, score) for label, box, score, i in zip(
        found.labels, found.boxes.tolist(), found.scores.tolist(), found.model_ids.tolist())
        if i == model_id) for model_id in (0, 1)]
    assert per_model[0] and len(per_model[0]) == len(per_model[1])
    for (label, box, score), (onnx_label, onnx_box, onnx_score) in zip(*per_model):
        assert onnx_label == label and onnx_score == pytest.approx(score, abs=1e-5)
        assert onnx_box == pytest.approx(box, abs=1e-3)

    out = root / "out_onnx"
    code = main(["rf", "detect", "--models", str(a), str(onnx_model), "--input", str(meta),
                 "--out", str(out), "--score_threshold", "0.0", "--iou_threshold", "1.0",
                 "--deadline_ms", "1e9"])
    assert code == 0
    result = json.loads((out / "synth_000.detections.json").read_text())
    assert result["models"] == [str(a), str(onnx_model)]
    assert result["settings"]["nfft"] == 128 and result["settings"]["image_size"] == 64
    rows = [sorted((d["chunk"], d["label"], d["box"], d["score"])
                   for d in result["detections"] if d["model_id"] == i) for i in (0, 1)]
    assert rows[0] and len(rows[0]) == len(rows[1])
    for (chunk, label, box, score), (onnx_chunk, onnx_label, onnx_box, onnx_score) in zip(*rows):
        assert (onnx_chunk, onnx_label) == (chunk, label)
        assert onnx_score == pytest.approx(score, abs=2e-5)
        assert onnx_box == pytest.approx(box, abs=0.011)  # rounded to 0.01 in the JSON
    assert {d["model"] for d in result["detections"]} == {"a"}


def test_a_bad_model_entry_is_a_one_line_error_naming_it(setup, onnx_model, tmp_path, capsys):
    _, meta, (a, _) = setup
    unknown = tmp_path / "model.pt"
    unknown.write_bytes(b"not a model")
    alone = tmp_path / "alone.onnx"
    shutil.copy(onnx_model, alone)
    cases = [
        (unknown, "model.pt: unknown model type .pt"),
        (alone, "alone.json: no sidecar next to alone.onnx"),
        (tmp_path / "gone.onnx", "gone.onnx: no such model file"),
    ]
    for suffix in (".engine", ".ep"):
        # not loadable here: TensorRT, Torch-TensorRT or a GPU is missing, or the bytes are bad
        fake = tmp_path / f"fake{suffix}"
        fake.write_bytes(b"not an engine")
        shutil.copy(onnx_model.with_suffix(".json"), fake.with_suffix(".json"))
        cases.append((fake, f"{fake}: "))
    for bad, message in cases:
        out = tmp_path / f"out_{bad.stem}"
        code = main(["rf", "detect", "--models", str(a), str(bad), "--input", str(meta),
                     "--out", str(out)])
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and line.startswith("neo: error:") and message in line
        assert not out.exists()
