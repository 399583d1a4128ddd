"""Load official RT-DETR(v2) checkpoints into neo models."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor, nn

from neo.models.rtdetr.decoder import bias_init_with_prob

# Buffers the official code derives from a fixed eval size; neo computes them per input size.
DERIVED_KEY_SUFFIXES = ("anchors", "valid_mask")
DERIVED_KEY_PARTS = ("pos_embed",)
# Tensors whose first dimension is the number of classes (+1 for the denoising padding row).
CLASS_KEY_PARTS = ("enc_score_head.", "dec_score_head.", "denoising_class_embed.")


@dataclass
class LoadReport:
    """What happened to each tensor during loading.

    Attributes:
        loaded: Model keys copied from the checkpoint.
        reinitialized: Class-dependent model keys re-initialised (number of classes differs).
        skipped: Checkpoint keys not used (unknown to the model, or derived buffers).
        missing: Model keys absent from the checkpoint (left as they were).
    """

    loaded: list[str] = field(default_factory=list)
    reinitialized: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One-paragraph human-readable summary."""
        lines = [
            f"loaded {len(self.loaded)} tensors, re-initialised {len(self.reinitialized)}, "
            f"skipped {len(self.skipped)} checkpoint keys, {len(self.missing)} model keys missing"
        ]
        for name, keys in [
            ("re-initialised", self.reinitialized),
            ("skipped", self.skipped),
            ("missing", self.missing),
        ]:
            if keys:
                shown = ", ".join(keys[:8]) + (" ..." if len(keys) > 8 else "")
                lines.append(f"  {name}: {shown}")
        return "\n".join(lines)


def _read(source: str | Path | Mapping) -> tuple[Mapping, str]:
    if isinstance(source, Mapping):
        return source, "<state dict>"
    from neo.utils.checkpoint_io import read_checkpoint

    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    return read_checkpoint(path), str(path)


def extract_state_dict(obj: Mapping, name: str = "<state dict>") -> dict[str, Tensor]:
    """Return the model weights of a checkpoint: ``ema.module`` > ``model`` > the dict itself.

    A ``module.`` prefix on every key (DistributedDataParallel) is removed.
    """
    if "ema" in obj and isinstance(obj["ema"], Mapping) and "module" in obj["ema"]:
        state = obj["ema"]["module"]
    elif "model" in obj and isinstance(obj["model"], Mapping):
        state = obj["model"]
    else:
        state = obj
    tensors = {k: v for k, v in state.items() if isinstance(v, Tensor)}
    if not tensors:
        raise ValueError(f"{name}: no tensors found in the checkpoint")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def _is_class_key(key: str) -> bool:
    return any(part in key for part in CLASS_KEY_PARTS)


def _is_derived_key(key: str) -> bool:
    last = key.rsplit(".", 1)[-1]
    return last in DERIVED_KEY_SUFFIXES or any(part in last for part in DERIVED_KEY_PARTS)


def _reinitialize(model: nn.Module, keys: list[str]) -> None:
    """Re-draw class-dependent tensors using the owning module's own initialisation."""
    modules = dict(model.named_modules())
    owners = {k.rsplit(".", 1)[0] for k in keys}
    for owner in sorted(owners):
        module = modules[owner]
        if isinstance(module, nn.Embedding):
            decoder = modules[owner.rsplit(".", 1)[0]] if "." in owner else model
            reset = getattr(decoder, "reset_class_embedding", None)
            if reset is not None:
                reset()
            else:
                module.reset_parameters()
        elif isinstance(module, nn.Linear):
            module.reset_parameters()
            if module.bias is not None:
                nn.init.constant_(module.bias, bias_init_with_prob(0.01))


def load_official_state_dict(
    model: nn.Module,
    path_or_state_dict: str | Path | Mapping,
    strict_classes: bool = False,
) -> LoadReport:
    """Load official RT-DETR(v2) weights (same key names as neo) into ``model``.

    Accepts a plain state dict, ``{"model": sd}`` or ``{"ema": {"module": sd}}`` (the EMA
    weights are preferred, as the official release uses them), in memory or as a file read with
    ``torch.load(..., weights_only=True)``. Works on sub-modules too, e.g. ``model.backbone`` with
    an official ImageNet ``PResNet`` file.

    Args:
        model: Target model.
        path_or_state_dict: Checkpoint file or mapping.
        strict_classes: Raise instead of re-initialising when the number of classes differs.

    Returns:
        A report of loaded, re-initialised, skipped and missing keys.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: Unreadable file, no matching key, a non-class shape mismatch, or a class
            mismatch with ``strict_classes``.
    """
    obj, name = _read(path_or_state_dict)
    source = extract_state_dict(obj, name)
    target = model.state_dict()
    report = LoadReport()
    to_load: dict[str, Tensor] = {}

    for key, value in source.items():
        if key not in target:
            report.skipped.append(key)
            continue
        expected = target[key]
        if value.shape != expected.shape:
            if _is_class_key(key):
                if strict_classes:
                    raise ValueError(
                        f"{name}: class-dependent tensor {key} has shape {tuple(value.shape)}, "
                        f"model expects {tuple(expected.shape)} (number of classes differs)"
                    )
                report.reinitialized.append(key)
                continue
            raise ValueError(
                f"{name}: tensor {key} has shape {tuple(value.shape)}, model expects "
                f"{tuple(expected.shape)} (wrong variant?)"
            )
        to_load[key] = value
    report.missing = [k for k in target if k not in source]
    report.skipped = [k for k in report.skipped if not _is_derived_key(k)] + [
        k for k in report.skipped if _is_derived_key(k)
    ]
    if not to_load:
        raise ValueError(
            f"{name}: no checkpoint key matches the model (not an RT-DETR checkpoint?)"
        )

    # Class tensors of a module are re-initialised together (e.g. weight and bias of one head).
    reinit_owners = {k.rsplit(".", 1)[0] for k in report.reinitialized}
    for key in list(to_load):
        if key.rsplit(".", 1)[0] in reinit_owners:
            del to_load[key]
            report.reinitialized.append(key)
    report.loaded = list(to_load)
    model.load_state_dict(to_load, strict=False)
    _reinitialize(model, report.reinitialized)
    return report
