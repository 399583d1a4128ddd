"""The ReID task end to end through the CLI: fit, open-set metrics, checkpoint, predict, cv."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from neo.cli import main
from neo.tasks.reid import REID_SPEC_KEY, ReIDTask, identity_prototypes

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "tiny_reid.yaml")
METRICS = ("rank1", "rank5", "mAP", "AUROC", "OSCR", "macro_F1")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _cache(cache, monkeypatch):
    monkeypatch.setenv("NEO_CACHE", str(cache))


def run(verb: str, folder: Path, *options: str) -> int:
    return main(
        [verb, "--config", CONFIG, *options,
         "--trainer.default_root_dir", str(folder),
         "--trainer.logger.init_args.save_dir", str(folder)]
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache) -> Path:
    folder = tmp_path_factory.mktemp("fit")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEO_CACHE", str(cache))
        assert run("fit", folder) == 0
    return folder


def test_fit_logs_retrieval_and_open_set_metrics(trained):
    (metrics,) = trained.rglob("metrics.csv")
    with open(metrics) as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/mAP")]
    assert len(rows) == 2  # one validation per epoch
    for key in METRICS:
        assert 0.0 <= float(rows[-1][f"val/{key}"]) <= 1.0, key
    assert float(rows[-1]["val/rank5"]) >= float(rows[-1]["val/rank1"])
    (provenance,) = trained.rglob("provenance.json")
    assert json.loads(provenance.read_text())["data_files"] >= 1  # the meta CSV at least


def test_checkpoint_keeps_identities_prototypes_and_threshold(trained):
    (ckpt,) = trained.rglob("last.ckpt")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    spec = state[REID_SPEC_KEY]
    num_classes = state["hyper_parameters"]["num_classes"]
    assert len(spec["identities"]) == num_classes == 6  # 8 identities, 2 held out (0.25)
    assert spec["input_size"] == [64, 32]
    assert spec["prototypes"].shape == (num_classes, 512)
    assert torch.allclose(spec["prototypes"].norm(dim=1), torch.ones(num_classes), atol=1e-5)
    task = ReIDTask.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
    assert task.identities == spec["identities"] and task.threshold == spec["threshold"]
    images = torch.randint(0, 256, (3, 3, 64, 32), dtype=torch.uint8)
    embeddings = task(images)
    assert embeddings.shape == (3, 512)
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(3), atol=1e-5)
    identities, scores = task.identify(embeddings)
    known = set(spec["identities"]) | {-1}
    assert set(identities.tolist()) <= known and scores.shape == (3,)


def test_predict_writes_identities_and_embeddings(trained, tmp_path):
    (ckpt,) = trained.rglob("last.ckpt")
    assert run("predict", tmp_path, "--ckpt_path", str(ckpt)) == 0
    (table,) = tmp_path.rglob("predictions/predictions.csv")
    with open(table) as f:
        rows = list(csv.DictReader(f))
    embeddings = np.load(table.parent / "embeddings.npy")
    assert len(rows) == len(embeddings) > 0
    assert {"row", "quarter", "angle", "label_id", "score", "crop_path"} <= set(rows[0])
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-4)


def test_cv_runs_grouped_folds_with_reid_columns(tmp_path, capsys):
    out = tmp_path / "cv"
    code = run("cv", tmp_path, "--name", "tiny", "--out", str(out), "--trainer.max_epochs", "1")
    assert code == 0
    with open(out / "tiny_summary.csv") as f:
        header = next(csv.reader(f))
    assert header[4:8] == ["rank1", "rank5", "mAP", "AUROC"]
    assert (out / "tiny_fold1.ckpt").is_file() and (out / "tiny_best.ckpt").is_file()
    assert "best fold by val/mAP (max)" in capsys.readouterr().out


def test_prototypes_are_normalised_means_per_identity():
    embeddings = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    prototypes, identities = identity_prototypes(embeddings, torch.tensor([7, 3, 7]))
    assert identities.tolist() == [3, 7]
    assert torch.allclose(prototypes, torch.tensor([[0.0, 1.0], [2**-0.5, 2**-0.5]]))
