"""The ``neo`` command: one parser for every verb.

Model verbs (``fit``, ``validate``, ``test``, ``predict``: methods of :class:`NeoTrainer`; ``cv``:
:func:`neo.commands.cv.cross_validate`) get the config, model, data and trainer options; tool
verbs (``neo data ...``, ``neo rf detect``) are nested subcommands built from typed functions.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import docstring_parser
from jsonargparse import Namespace
from lightning import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from neo.trainer import NeoTrainer
from neo.utils.checkpoint_io import CheckpointError, read_checkpoint
from neo.utils.runs import LAST_CHECKPOINT, keep_previous_metrics, latest_last_checkpoint

# neo's own errors (DatasetError, RecordingError, CheckpointError, ...) are ValueErrors.
# errors of the input or the machine (a bad file, a full disk) are one line (NEO_TRACEBACK=1)
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)
# verb -> module with ``description()``, ``add_verbs(parser)`` and ``run(config) -> int``
TOOL_VERBS = {
    "data": "neo.commands.data",
    "rf": "neo.commands.rf_detect",
    "benchmark": "neo.commands.benchmark",
    "remix": "neo.commands.remix",
    "doctor": "neo.commands.doctor",
    "sweep": "neo.commands.sweep",
}
CROSS_VALIDATION = "cv"
# options given as two numbers on the command line (``--input_size H W``)
PAIR_OPTIONS = ("--input_size", "--view")
# switches that may be given bare (``--dynamic`` for ``--dynamic true``)
FLAG_OPTIONS = ("--dynamic", "--allow_tf32", "--calib.allow_synthetic")
# model arguments set from the data module at instantiation (see add_arguments_to_parser)
LINKED_MODEL_KEYS = ("num_classes",)
# ``--ckpt_path`` values that Lightning resolves itself
LIGHTNING_CKPT_NAMES = ("best", "hpc", "registry")


def _summary(function: Any) -> str:
    return docstring_parser.parse(function.__doc__ or "").short_description or ""


@rank_zero_only
def _note(message: str) -> None:
    print(f"neo: {message}", file=sys.stderr)


class NeoArgumentParser(LightningArgumentParser):
    """Reports a command-line error as one short line, last, instead of after the usage."""

    def error(self, message: str, ex: Exception | None = None) -> Any:  # noqa: D102
        if not self.exit_on_error:
            return super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        sys.stderr.write(f"(options: {prog} --help)\nneo: error: {' '.join(message.split())}\n")
        sys.exit(2)


class NeoSaveConfig(SaveConfigCallback):
    """Saves the resolved config and the run's provenance, and sends both to W&B when W&B logs.

    The provenance (:func:`neo.utils.provenance.run_provenance`: git commit, data fingerprint)
    goes to ``provenance.json`` beside ``config.yaml`` and to the W&B config under ``neo``.
    """

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:  # noqa: D102
        # trainer.log_dir is a collective under DDP: asked here on every rank, not in
        # save_config, which runs on rank zero only
        self._log_dir = trainer.log_dir if self.save_to_log_dir else None
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:  # noqa: D102
        from neo.utils.atomic import write_json
        from neo.utils.provenance import run_provenance

        provenance = run_provenance(trainer.datamodule)
        if getattr(self, "_log_dir", None) is not None:
            write_json(Path(self._log_dir) / "provenance.json", provenance, indent=1)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                config = {**self.config.as_dict(), "neo": provenance}
                logger.experiment.config.update(config, allow_val_change=True)


class NeoCLI(LightningCLI):
    """LightningCLI with every neo verb, seed 0, and the class count linked from the data.

    Args:
        args: command-line arguments (default: ``sys.argv[1:]``).
        run: run the verb (False: only build the model, data and trainer, without a verb).
        **kwargs: more LightningCLI arguments.
    """

    def __init__(self, args: list[str] | None = None, run: bool = True, **kwargs: Any) -> None:
        self.exit_code = 0
        if args is None:
            sys.argv[1:] = join_pair_options(sys.argv[1:])
        elif isinstance(args, list):
            args = join_pair_options(args)
        command_line = sys.argv[1:] if args is None else args
        self._argv = list(command_line) if isinstance(command_line, list) else []
        kwargs.setdefault("trainer_class", NeoTrainer)
        super().__init__(
            model_class=LightningModule,
            datamodule_class=LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            seed_everything_default=0,
            save_config_callback=NeoSaveConfig,
            save_config_kwargs={"overwrite": True},
            parser_class=NeoArgumentParser,
            parser_kwargs={
                "prog": "neo",
                "description": "neo: high-resolution object detection. Every verb has --help.",
            },
            args=args,
            run=run,
            **kwargs,
        )

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """The model verbs and the arguments of their function that are not options.

        A new model verb is a :class:`NeoTrainer` method taking the built ``model`` and
        ``datamodule`` (like ``Trainer.validate``), listed here with those two skipped.
        """
        return {
            **LightningCLI.subcommands(),
            "export": {"model", "datamodule"},
            CROSS_VALIDATION: {"build_fold"},
        }

    def _add_subcommands(self, parser: LightningArgumentParser, **kwargs: Any) -> None:
        self._subcommand_parsers: dict[str, LightningArgumentParser] = {}
        subcommands = parser.add_subcommands()
        for verb, skip in self.subcommands().items():
            sub_kwargs = dict(kwargs.get(verb, {}))
            if verb == CROSS_VALIDATION:
                from neo.commands.cv import cross_validate

                sub_kwargs.setdefault("description", _summary(cross_validate))
                sub = self.init_parser(**sub_kwargs)
                self._add_arguments(sub)
                added = sub.add_function_arguments(cross_validate, skip=set(skip))
                self._subcommand_method_arguments[verb] = added
            else:
                sub_kwargs.setdefault("description", _summary(getattr(self.trainer_class, verb)))
                sub = self._prepare_subcommand_parser(self.trainer_class, verb, **sub_kwargs)
            self._subcommand_parsers[verb] = sub
            subcommands.add_subcommand(verb, sub, help=sub.description)
        for verb, module in TOOL_VERBS.items():
            tool = importlib.import_module(module)
            sub = self.parser_class(description=tool.description())
            subcommands.add_subcommand(verb, sub, help=sub.description)
            tool.add_verbs(sub)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:  # noqa: D102
        parser.link_arguments(
            "data.num_classes", "model.init_args.num_classes", apply_on="instantiate"
        )

    def _parse_ckpt_path(self) -> None:
        """Resolves ``--ckpt_path last`` and applies the checkpoint's model hyper-parameters.

        A checkpoint of another model class than the config's is an error; model options given
        on the command line win over the checkpoint's values, which win over the config files'.
        """
        verb = self.config.get("subcommand")
        config = self.config.get(verb) if verb else None
        if not isinstance(config, Namespace) or not config.get("ckpt_path"):
            return
        if config.ckpt_path == "last":
            config.ckpt_path = str(self._latest_run_checkpoint(config, resume=verb == "fit"))
        path = str(config.ckpt_path)
        if path in LIGHTNING_CKPT_NAMES or "://" in path:
            return
        from neo.inference.spec import SPEC_KEY

        checkpoint = read_checkpoint(path, mmap=True)  # only the metadata is read here
        hparams = dict(checkpoint.get("hyper_parameters") or {})
        hparams.pop("_instantiator", None)
        spec = checkpoint.get(SPEC_KEY) or {}
        saved_class = hparams.pop("_class_path", None) or spec.get("task_class")
        del checkpoint
        model = config.model
        if saved_class and not same_class(saved_class, model.class_path):
            raise CheckpointError(
                f"{path}: a {saved_class} checkpoint, but the config's model is "
                f"{model.class_path}; give the config the checkpoint was trained with"
            )
        if not hparams:
            self._skip_initial_weights(verb)
            return
        before = model.init_args.clone()
        explicit = {k: before[k] for k in command_line_model_keys(self._argv) if k in before}
        self.config = self.parser.parse_object(
            {verb: {"model": {"class_path": model.class_path, "init_args": hparams}}}, self.config
        )
        after = self.config[verb].model.init_args
        for key, value in explicit.items():
            after[key] = value
        from_checkpoint = [
            f"{k}={after[k]!r} (config: {before[k]!r})"
            for k in hparams
            if k in before and k not in (*explicit, *LINKED_MODEL_KEYS) and after[k] != before[k]
        ]
        if from_checkpoint:
            _note(f"model settings from {path}: {', '.join(from_checkpoint)}")
        if explicit:
            given = ", ".join(f"{k}={v!r}" for k, v in explicit.items())
            _note(f"model settings from the command line: {given}")
        self._skip_initial_weights(verb)

    def _skip_initial_weights(self, verb: str) -> None:
        """The checkpoint supplies every weight: starting weights are neither fetched nor read.

        (:meth:`neo.tasks.DetectionTask.without_initial_weights`, e.g. no ImageNet download for a
        Faster R-CNN that started from it, no official ``.pth`` needed to resume an RT-DETR.)
        """
        model = self.config[verb].model
        without = getattr(_resolve(model.class_path), "without_initial_weights", None)
        init_args = model.get("init_args")
        if not callable(without) or init_args is None:
            return
        current = {k: init_args[k] for k in vars(init_args)}
        for key, value in without(current).items():
            if key in current and current[key] != value:
                init_args[key] = value

    def _latest_run_checkpoint(self, config: Namespace, resume: bool) -> Path:
        """``last.ckpt`` of the config's newest run; ``resume``: continue in that run's folder."""
        trainer = config.trainer
        default_root = Path(trainer.get("default_root_dir") or ".")
        for callback in trainer.get("callbacks") or []:
            dirpath = callback.get("init_args", {}).get("dirpath") if callback else None
            if dirpath and (Path(dirpath) / LAST_CHECKPOINT.name).is_file():
                return Path(dirpath) / LAST_CHECKPOINT.name
        logger = trainer.get("logger")
        if isinstance(logger, list):
            logger = logger[0] if logger else False
        if logger is False:
            path = default_root / LAST_CHECKPOINT
            if not path.is_file():
                raise CheckpointError(f"--ckpt_path last: no {path}")
            return path
        if logger is None or logger is True:
            logger = Namespace(
                class_path="lightning.pytorch.loggers.TensorBoardLogger",
                init_args=Namespace(save_dir=str(default_root), name="lightning_logs"),
            )
            trainer.logger = logger
        init_args = logger.get("init_args") or Namespace()
        if "save_dir" not in init_args:
            raise CheckpointError(
                f"--ckpt_path last: {logger.class_path} has no run folders; give the path of the "
                "checkpoint to resume"
            )
        root = Path(init_args.get("save_dir") or default_root)
        name = init_args.get("name", "lightning_logs")
        root = root / name if name else root
        found = latest_last_checkpoint(root)
        if found is None:
            raise CheckpointError(
                f"--ckpt_path last: no run of this config has a last.ckpt "
                f"({root}/version_*/{LAST_CHECKPOINT})"
            )
        version, path = found
        if not resume:
            return path
        init_args.version = version
        log_dir = path.parent.parent
        kept = keep_previous_metrics(log_dir) if rank_zero_only.rank == 0 else None
        note = f"; earlier metrics kept in {kept.name}" if kept else ""
        _note(f"resuming {path}; the run continues in {log_dir}{note}")
        return path

    def _set_seed(self) -> None:
        if self.config.get("subcommand") not in TOOL_VERBS:
            super()._set_seed()

    def instantiate_classes(self) -> None:
        """Builds model, data and trainer for a model verb (``cv`` builds them per fold)."""
        if self.subcommand not in (*TOOL_VERBS, CROSS_VALIDATION):
            super().instantiate_classes()

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The trainer; ``predict`` writes the task's predictions (COCO results for detectors)."""
        trainer = super().instantiate_trainer(**kwargs)
        if self.subcommand == "predict" and not any(
            isinstance(c, BasePredictionWriter) for c in trainer.callbacks
        ):
            writer = getattr(self.model, "prediction_writer", None)
            if callable(writer):
                trainer.callbacks.append(writer())
            else:
                from neo.callbacks.prediction_writer import CocoPredictionWriter

                trainer.callbacks.append(CocoPredictionWriter())
        return trainer

    def _run_subcommand(self, subcommand: str) -> None:
        if subcommand in TOOL_VERBS:
            self.exit_code = importlib.import_module(TOOL_VERBS[subcommand]).run(
                self.config[subcommand]
            )
        elif subcommand == CROSS_VALIDATION:
            self.cv()
        else:
            super()._run_subcommand(subcommand)

    def cv(self) -> None:
        """Runs ``neo cv``: every fold trained in turn (see :mod:`neo.commands.cv`)."""
        from neo.commands.cv import cross_validate

        config = self.config[CROSS_VALIDATION]
        options = {k: config[k] for k in self._subcommand_method_arguments[CROSS_VALIDATION]}
        if not options.get("name"):
            files = config.get("config") or []
            options["name"] = Path(str(files[-1])).stem if files else None
        cross_validate(self._build_fold, **options)

    def _build_fold(
        self, fold: int, num_folds: int | None, root: Path
    ) -> tuple[Trainer, LightningModule, LightningDataModule]:
        """Model, data and trainer of one fold: the parsed config with ``data.init_args.fold``."""
        config = self.config[CROSS_VALIDATION]
        init_args = config.data.get("init_args") or Namespace()
        if "fold" not in init_args or "num_folds" not in init_args:
            raise ValueError(
                f"{config.data.class_path} has no fold/num_folds arguments: it cannot be "
                "cross-validated"
            )
        init_args.fold = fold
        if num_folds is not None:
            init_args.num_folds = num_folds
        config.trainer.default_root_dir = str(root)
        self.__dict__.pop("config_dump", None)  # the saved hyper-parameters follow the fold
        self._set_seed()
        super().instantiate_classes()
        return self.trainer, self.model, self.datamodule


def _resolve(class_path: str) -> Any:
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return class_path


def same_class(saved: str, configured: str) -> bool:
    """Whether a checkpoint's recorded class path names the config's class (or an alias of it).

    Only modules of the configured class's own package are imported for the comparison: a module
    named by a checkpoint alone is never imported.
    """
    if saved == configured:
        return True
    if saved.split(".", 1)[0] != configured.split(".", 1)[0]:
        return False
    return _resolve(saved) is _resolve(configured)


def command_line_model_keys(argv: list[str]) -> set[str]:
    """The model arguments set on the command line (``--model.init_args.X`` or ``--model.X``)."""
    keys = set()
    for token in argv:
        if token.startswith("--model."):
            key = token.removeprefix("--model.").split("=", 1)[0].removeprefix("init_args.")
            key = key.split(".", 1)[0].rstrip("+")
            if key not in ("class_path", "init_args", "dict_kwargs", "help"):
                keys.add(key)
    return keys


def join_pair_options(argv: list[str]) -> list[str]:
    """Command-line shorthands jsonargparse does not read, spelled out.

    ``--input_size 1088 1920`` -> ``--input_size=[1088,1920]`` (also ``--view W H``); a bare
    switch such as ``--dynamic`` (last, or followed by another option) -> ``--dynamic=true``.
    """
    joined: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        pair = argv[i + 1 : i + 3]
        if arg in PAIR_OPTIONS and len(pair) == 2 and all(v.isdigit() for v in pair):
            joined.append(f"{arg}=[{pair[0]},{pair[1]}]")
            i += 3
            continue
        following = argv[i + 1] if i + 1 < len(argv) else None
        if arg in FLAG_OPTIONS and (following is None or following.startswith("--")):
            arg = f"{arg}=true"
        joined.append(arg)
        i += 1
    return joined


def one_line(error: BaseException) -> str:
    """An exception's message on one line: its root cause's when that is a user error too.

    (jsonargparse reports a data module's ValueError inside a long "does not validate" error.)
    """
    while isinstance(error.__cause__, USER_ERRORS):
        error = error.__cause__
    return " ".join(str(error).split()) or type(error).__name__


def main(args: list[str] | None = None) -> int:
    """Entry point of the ``neo`` console script and ``python -m neo``."""
    try:
        code = NeoCLI(args=args).exit_code
    except USER_ERRORS as e:
        if os.environ.get("NEO_TRACEBACK"):
            raise
        print(f"neo: error: {one_line(e)}", file=sys.stderr)
        code = 1
    if args is None and code:
        sys.exit(code)
    return code
