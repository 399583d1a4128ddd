"""Every shipped config and every config combination the docs spell parse, and the CLI's help works.

configs/ holds full configs (configs/*.yaml, configs/demo/), group fragments (configs/trainer/,
configs/model/, configs/data/: the value of one section, named from a config or given as
``--trainer/--model/--data FILE``) and overlays added after a full config (configs/debug/,
configs/logger/).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonargparse import ArgumentParser
from lightning import LightningDataModule, LightningModule

from neo.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(p.relative_to(ROOT) for p in (ROOT / "configs").rglob("*.yaml"))
GROUPS = ("trainer", "model", "data")
OVERLAYS = ("debug", "logger")
BASE = "configs/demo/faster_rcnn.yaml"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONFIG_OPTIONS = {"--config", *(f"--{group}" for group in GROUPS)}
RUN_FOLDER = ("default_root_dir", "logger")


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("NEO_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(ROOT)


def resolve(verb: str, args: list[str]) -> dict[str, Any]:
    """The config ``neo <verb> ARGS --print_config`` resolves to."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([verb, *args, "--print_config"])
        except SystemExit as exit_info:
            code = exit_info.code
    assert code in (0, None), f"neo {verb} {' '.join(args)}: {err.getvalue()[-2000:]}"
    return yaml.safe_load(out.getvalue())


def expand(config: Path) -> dict[str, Any]:
    """A config file with each section named as a file replaced by that file's content."""
    content = yaml.safe_load(config.read_text())
    for group in GROUPS:
        if isinstance(content.get(group), str):
            content[group] = yaml.safe_load((config.parent / content[group]).read_text())
    return content


def assert_contains(resolved: Any, given: Any, where: str = "") -> None:
    """Every value ``given`` by a config file is in the resolved config."""
    if isinstance(given, dict):
        assert isinstance(resolved, dict), where
        for key, value in given.items():
            assert key in resolved, f"{where}.{key} missing"
            assert_contains(resolved[key], value, f"{where}.{key}")
    elif isinstance(given, list) and given and isinstance(given[0], dict | list):
        assert isinstance(resolved, list) and len(resolved) == len(given), where
        for i, (r, g) in enumerate(zip(resolved, given, strict=True)):
            assert_contains(r, g, f"{where}[{i}]")
    else:
        assert resolved == given, f"{where}: {resolved!r} != {given!r}"


def arguments_for(config: Path) -> list[str]:
    """How a shipped file is given to ``neo fit``: alone, as an overlay, or as a fragment."""
    kind = config.parts[1]
    if kind in GROUPS:
        return ["--config", BASE, f"--{kind}", str(config)]
    if kind in OVERLAYS:
        return ["--config", BASE, "--config", str(config)]
    return ["--config", str(config)]


def test_configs_exist():
    assert any(str(p).endswith("demo/faster_rcnn.yaml") for p in CONFIGS)
    assert {p.parts[1] for p in CONFIGS} >= {*GROUPS, *OVERLAYS, "demo"}


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_config_parses(config):
    resolved = resolve("fit", arguments_for(config))
    assert "trainer" in resolved and "class_path" in resolved["model"]
    given = yaml.safe_load((ROOT / config).read_text())
    if config.parts[1] in GROUPS:
        given = {config.parts[1]: given}
    elif config.parts[1] not in OVERLAYS:
        given = expand(ROOT / config)
    assert_contains(resolved, given)


def documented_commands() -> list[tuple[str, ...]]:
    """The config options of ``neo <verb> ... --config FILE ...`` in the docs and config comments.

    Only the config options are kept (``--ckpt_path``, ``--data.init_args...`` etc. need files);
    the combinations ``test_config_parses`` already parses are left out.
    """
    found: dict[tuple[str, ...], None] = {}
    for path in [*DOCS, *(ROOT / p for p in CONFIGS)]:
        text = path.read_text(encoding="utf-8").replace("\\\n", " ")
        for line in text.splitlines():
            tokens = [t for t in re.split(r"[\s,\[\]`;#()]+", line) if t]
            if "neo" not in tokens[:-1]:
                continue
            args: list[str] = []
            for option, value in itertools.pairwise([*tokens, ""]):
                option, _, inline = option.partition("=")
                value = inline or value
                if option in CONFIG_OPTIONS and value.endswith((".yaml", ".yml")):
                    args += [option, value]
            if args:
                found[tuple(args)] = None
    shipped = {tuple(arguments_for(config)) for config in CONFIGS}
    return [args for args in found if args not in shipped]


DOCUMENTED = documented_commands()


def test_docs_spell_composed_configs():
    assert any("--model" in args for args in DOCUMENTED)
    assert any(args.count("--config") >= 2 for args in DOCUMENTED)


@pytest.mark.parametrize("args", DOCUMENTED, ids=" ".join)
def test_documented_combination_parses(args):
    resolved = resolve("fit", list(args))
    for option, value in zip(args[::2], args[1::2], strict=True):
        if option != "--config":
            assert_contains(resolved, {option[2:]: yaml.safe_load((ROOT / value).read_text())})


def test_r18_trainer_is_the_coco_trainer_with_its_own_run_folder():
    r18 = yaml.safe_load((ROOT / "configs/rtdetr_r18.yaml").read_text())["trainer"]
    coco = yaml.safe_load((ROOT / "configs/trainer/coco.yaml").read_text())
    assert r18["default_root_dir"] == r18["logger"]["init_args"]["save_dir"] == "runs/rtdetr_r18"
    assert {k: v for k, v in r18.items() if k not in RUN_FOLDER} == {
        k: v for k, v in coco.items() if k not in RUN_FOLDER
    }
    assert r18["logger"]["class_path"] == coco["logger"]["class_path"]


@pytest.mark.parametrize("config", ["configs/demo/rtdetr.yaml", "configs/demo/faster_rcnn.yaml"])
def test_demo_configs_instantiate(config, tmp_path):
    resolved = resolve("fit", ["--config", config])
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(LightningDataModule, "data")
    data = parser.instantiate_classes(parser.parse_object({"data": resolved["data"]})).data
    model_section = resolved["model"]
    model_section["init_args"]["num_classes"] = data.num_classes
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(LightningModule, "model")
    model = parser.instantiate_classes(parser.parse_object({"model": model_section})).model
    fragment = yaml.safe_load((ROOT / config).read_text())["model"]
    given = yaml.safe_load((ROOT / config).parent.joinpath(fragment).read_text())["init_args"]
    assert type(model).__name__ == model_section["class_path"].rsplit(".", 1)[1]
    assert model.hparams["lr"] == given["lr"]
    assert model.hparams["weight_decay"] == given["weight_decay"]
    assert data.num_classes == 3 and any((tmp_path / "cache").iterdir())


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


def test_data_check_reads_a_config_made_of_fragments(capsys):
    try:
        code = main(["data", "check", "--config", "configs/demo/faster_rcnn.yaml", "--no_decode"])
    except SystemExit as exit_info:
        code = exit_info.code
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    assert "OK" in captured.out
