"""Every shipped config parses, and the CLI's help works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from neo.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(p.relative_to(ROOT) for p in (ROOT / "configs").rglob("*.yaml"))
FRAGMENTS = {"debug", "logger"}


def test_configs_exist():
    assert any(str(p).endswith("demo/faster_rcnn.yaml") for p in CONFIGS)


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_config_parses(config, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = ["fit", "--config", str(config)]
    if config.parts[1] in FRAGMENTS:
        args = ["fit", "--config", "configs/demo/faster_rcnn.yaml", "--config", str(config)]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "class_path" in printed and "trainer:" in printed


def test_help_of_entry_points():
    out = subprocess.run(
        [sys.executable, "-m", "neo", "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: neo" in out.stdout and "neo data" in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "neo", "fit", "--help"], capture_output=True, text=True, check=True
    )
    assert "--config" in out.stdout and "--ckpt_path" in out.stdout


def test_data_verbs_have_help(capsys):
    for verb in ("check", "synth"):
        with pytest.raises(SystemExit) as exit_info:
            main(["data", verb, "--help"])
        assert exit_info.value.code == 0
        assert "--" in capsys.readouterr().out
