"""``neo data ...``: dataset verbs, each a typed function turned into options by jsonargparse."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from jsonargparse import ArgumentParser

from neo.commands.data_check import add_check_arguments, run_check

CHECK = "check"
# verb -> (module, function); only the light module that defines each function is imported
FUNCTION_VERBS: dict[str, tuple[str, str]] = {
    "synth": ("neo.data.synth", "synth"),
    "synth-rf": ("neo.rf.synth", "synth_rf"),
    "spectrogram": ("neo.rf.dataset_writer", "make_spectrograms"),
    "coco": ("neo.commands.coco_download", "coco"),
    "synth-reid": ("neo.data.reid.synth", "synth_reid"),
    "crops": ("neo.data.reid.crops", "crops"),
    "negatives": ("neo.data.reid.negatives", "negatives"),
    "synth-scenes": ("neo.remix.scenes", "synth_scenes"),
}


def _function(verb: str) -> Callable[..., Any]:
    module, name = FUNCTION_VERBS[verb]
    return getattr(importlib.import_module(module), name)


def _summary(function: Callable[..., Any]) -> str:
    return (function.__doc__ or "").strip().split("\n")[0]


def description() -> str:
    """One line naming the verbs (the help of ``neo data``)."""
    return f"dataset tools (neo data {{{','.join([CHECK, *FUNCTION_VERBS])}}})"


def add_verbs(parser: ArgumentParser) -> None:
    """Adds the verbs to the ``neo data`` parser (already a subcommand of ``neo``)."""
    subcommands = parser.add_subcommands()
    check = type(parser)(description="Validate a dataset and list every problem with counts.")
    add_check_arguments(check)
    subcommands.add_subcommand(CHECK, check, help="validate a dataset and list every problem")
    for verb in FUNCTION_VERBS:
        function = _function(verb)
        sub = type(parser)(description=_summary(function))
        sub.add_function_arguments(function, as_positional=False)
        subcommands.add_subcommand(verb, sub, help=_summary(function))


def run(config: Any) -> int:
    """Runs ``neo data <verb>`` from its parsed options; returns the exit code."""
    verb = config.subcommand
    if verb == CHECK:
        return run_check(config[verb])
    kwargs = config[verb].as_dict()
    kwargs.pop("__path__", None)
    _function(verb)(**kwargs)
    return 0
