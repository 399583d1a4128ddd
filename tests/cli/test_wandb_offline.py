"""W&B logging works offline, and the run's config carries the resolved config and provenance."""

from __future__ import annotations

import json
from pathlib import Path

from neo.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "tests" / "configs" / "tiny_faster_rcnn.yaml")


def test_offline_wandb_run_records_config_and_provenance(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("NEO_CACHE", str(tmp_path / "cache"))
    code = main(
        [
            "fit",
            "--config", CONFIG,
            "--config", str(ROOT / "configs" / "logger" / "wandb.yaml"),
            "--trainer.logger.init_args.save_dir", str(tmp_path),
            "--trainer.default_root_dir", str(tmp_path),
        ]
    )  # fmt: skip
    assert code in (0, None)
    import wandb

    assert wandb.run is not None and wandb.run.settings.mode == "offline"
    try:
        config = dict(wandb.run.config)
        run_id = wandb.run.id
    finally:
        wandb.finish()
    assert config["model"]["class_path"] == "neo.tasks.FasterRCNNTask"
    assert config["trainer"]["max_epochs"] == 1  # the resolved config, not only the model's
    provenance = config["neo"]
    assert len(provenance["data_fingerprint"]) == 16 and provenance["data_files"] == 2
    assert "git_commit" in provenance
    (saved,) = tmp_path.rglob("provenance.json")
    assert json.loads(saved.read_text()) == provenance
    # each W&B run has its own folder (config, provenance, checkpoints), not the shared save_dir
    assert saved.parent == tmp_path / "neo" / run_id
    assert (saved.parent / "config.yaml").is_file()
    assert list((saved.parent / "checkpoints").glob("*.ckpt"))
    assert list(tmp_path.rglob("offline-run-*/run-*.wandb"))  # written locally, nothing sent
