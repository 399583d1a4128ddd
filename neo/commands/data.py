"""``neo data ...``: dataset verbs, each a typed function turned into options by jsonargparse."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from jsonargparse import ArgumentParser

from neo.commands.data_check import add_check_arguments, run_check

# verb -> (module, function); imported only when the verb runs, so `neo --help` stays fast
FUNCTION_VERBS: dict[str, tuple[str, str]] = {
    "synth": ("neo.data.synth", "synth"),
    "synth-rf": ("neo.rf", "synth_rf"),
    "spectrogram": ("neo.rf", "make_spectrograms"),
    "coco": ("neo.commands.coco_download", "coco"),
}


def _function(verb: str) -> Callable[..., Any]:
    module, name = FUNCTION_VERBS[verb]
    return getattr(importlib.import_module(module), name)


def build_parser() -> ArgumentParser:
    """The ``neo data`` parser with one subcommand per verb."""
    parser = ArgumentParser(prog="neo data", description="Dataset tools: check, generate, convert.")
    subcommands = parser.add_subcommands(dest="verb")
    check = ArgumentParser(description="Validate a dataset and list every problem with counts.")
    add_check_arguments(check)
    subcommands.add_subcommand("check", check, help="validate a dataset and list every problem")
    for verb in FUNCTION_VERBS:
        function = _function(verb)
        sub = ArgumentParser(description=(function.__doc__ or "").strip().split("\n")[0])
        sub.add_function_arguments(function, as_positional=False)
        subcommands.add_subcommand(verb, sub, help=(function.__doc__ or "").strip().split("\n")[0])
    return parser


def run(argv: list[str]) -> int:
    """Runs ``neo data <verb> ...``; returns the exit code."""
    parser = build_parser()
    if argv and argv[0] == "check":
        return run_check(parser._subcommands_action._name_parser_map["check"], argv[1:])
    cfg = parser.parse_args(argv)
    verb = cfg.verb
    kwargs = cfg[verb].as_dict()
    kwargs.pop("__path__", None)
    _function(verb)(**kwargs)
    return 0
