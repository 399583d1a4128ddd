"""Every reproduction recipe in experiments/recipes names a command the neo CLI accepts.

A recipe is a YAML record: ``name``, ``data`` (how to get the data), ``command`` (the neo argument
list), ``hardware`` and ``expected`` (metrics with the published value, or null where the field
publishes none, and where the value comes from).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.cli.test_configs import resolve

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "experiments" / "recipes").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _in_repository(tmp_path, monkeypatch):
    monkeypatch.setenv("NEO_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(ROOT)


def test_the_four_published_style_experiments_have_recipes():
    assert {p.stem for p in RECIPES} >= {
        "rtdetr_r50_coco_1080p",
        "rtdetr_r18_finetune_16x9",
        "reid_strong_baseline",
        "spectrogram_g20",
    }


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_is_complete_and_its_command_parses(path):
    recipe = yaml.safe_load(path.read_text())
    assert recipe["name"] == path.stem
    assert recipe["data"] and recipe["hardware"]
    for expected in recipe["expected"]:
        assert expected["metric"].startswith("val/")
        assert expected["value"] is None or expected["source"]
        assert expected["where"]
    command = recipe["command"]
    assert command[0] == "neo" and command[1] in ("fit", "cv")
    # `neo cv` runs `neo fit` per fold with the same options
    config = resolve("fit", command[2:])
    assert config["model"]["class_path"].startswith("neo.tasks.")
