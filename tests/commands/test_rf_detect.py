"""``neo rf detect``: two tiny checkpoints on a tiny synthetic recording."""

from __future__ import annotations

import json
from pathlib import Path

import lightning
import pytest
import sigmf
import torch

from neo.cli import main
from neo.inference import load_model
from neo.rf import synth_rf
from neo.tasks import FasterRCNNTask

SPECTROGRAM = {"nfft": 128, "hop": 64, "image_size": 64, "floor_percentile": 10.0}


def tiny_checkpoint(path: Path, labels: list[str], image_size: int, with_class_path: bool) -> Path:
    torch.manual_seed(len(labels))
    task = FasterRCNNTask(
        num_classes=len(labels), returned_layers=[3, 4], anchor_sizes=[[16], [32], [64]],
        rpn_proposals_test=20, detections_per_image=10, score_threshold=0.0,
    )
    hparams = dict(task.hparams)
    if with_class_path:  # as LightningCLI records it
        hparams["_class_path"] = "neo.tasks.FasterRCNNTask"
        hparams["_instantiator"] = "lightning.pytorch.cli.instantiate_module"
    torch.save({
        "state_dict": task.state_dict(), "hyper_parameters": hparams,
        "pytorch-lightning_version": lightning.__version__,
        "neo_classes": {"category_ids": list(range(1, len(labels) + 1)), "names": labels},
        "SpectrogramDataModule": {"image_size": image_size, "labels": labels,
                                  "spectrogram": SPECTROGRAM},
    }, path)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("rf")
    synth_rf(root / "sigmf", num_recordings=1, duration_s=0.4, sample_rate=1e5,
             bursts_per_second=10, burst_duration_s=(0.02, 0.05))
    a = tiny_checkpoint(root / "a.ckpt", ["chirp", "tone"], 64, with_class_path=True)
    b = tiny_checkpoint(root / "b.ckpt", ["psk"], 32, with_class_path=False)
    return root, root / "sigmf" / "synth_000.sigmf-meta", [a, b]


def test_checkpoints_load_with_their_classes_and_sizes(setup):
    _, _, (a, b) = setup
    first, second = load_model(a), load_model(b)
    assert isinstance(first.task, FasterRCNNTask) and not first.task.training
    assert (first.class_names, first.image_size) == (["chirp", "tone"], 64)
    assert (second.class_names, second.image_size) == (["psk"], 32)


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
    with pytest.raises(ValueError, match="other than the recording's own folder"):
        main(["rf", "detect", "--models", str(models[0]), "--input", str(setup[1]),
              "--out", str(setup[1].parent)])
