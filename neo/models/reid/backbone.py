"""Backbones of the ReID network: any convolutional timm model as a feature-map network."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import timm
import torch
from timm.layers import Conv2dSame
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.modules.utils import _pair

# (height, width) of the dummy image used to find the last downsampling layers and the channels
PROBE_SIZE = (64, 64)
STRIDED_TYPES = (nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d)
WRAPPER_KEYS = ("state_dict", "model")
DDP_PREFIX = "module."


def build_backbone(
    name: str,
    pretrained: bool = False,
    weights: Path | None = None,
    last_stride: int = 1,
) -> tuple[nn.Module, int]:
    """Builds a timm model that maps images (N,3,H,W) to a feature map (N,C,h,w).

    The classifier and global pooling of the timm model are removed. Nothing is downloaded
    unless ``pretrained`` is set.

    Args:
        name: timm model name, e.g. ``"resnet50"``, ``"convnext_tiny"``, ``"efficientnet_b0"``.
        pretrained: download timm's pretrained weights (needs internet).
        weights: local weights file (``.pth``/``.pt``/``.safetensors``) loaded into the backbone
            after building it; classifier tensors and unknown keys are ignored.
        last_stride: 1 removes the downsampling of the last stage ("last stride 1" of the bag of
            tricks: a 256x128 image gives a 16x8 map on resnet50 instead of 8x4); 2 keeps it.

    Returns:
        ``(backbone, channels)``: the network and the channels C of its feature map.

    Raises:
        ValueError: unknown model name, a model that gives no feature map, a bad
            ``last_stride``, or an unusable weights file.
        FileNotFoundError: ``weights`` does not exist.
    """
    if last_stride not in (1, 2):
        raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
    if not timm.is_model(name):
        raise ValueError(f"unknown timm backbone {name!r}; see timm.list_models()")
    model = timm.create_model(name, pretrained=pretrained, num_classes=0, global_pool="")
    if weights is not None:
        load_backbone_weights(model, Path(weights))
    if last_stride == 1:
        channels, _, _ = remove_last_downsampling(model, name)
    else:
        channels, _, _ = probe_feature_map(model, name)
    return model, channels


def probe_feature_map(model: nn.Module, name: str) -> tuple[int, int, int]:
    """Runs a dummy image through the model and returns its feature map's (C, h, w).

    Args:
        model: the backbone.
        name: its name, for error messages.

    Returns:
        Channels, height and width of the map of a ``PROBE_SIZE`` image.

    Raises:
        ValueError: the model cannot run the image or does not return a 4-D feature map.
    """
    return _probe(model, name)[0]


def remove_last_downsampling(model: nn.Module, name: str = "backbone") -> tuple[int, int, int]:
    """Sets the stride of the layers that make the last downsampling of the model to 1.

    These layers are found by running a dummy image: the strided convolutions and poolings whose
    output already has the final map's size (e.g. ``layer4.0.conv1`` and
    ``layer4.0.downsample.0`` on a ResNet, ``stages.3.downsample.1`` on a ConvNeXt,
    ``blocks.5.0.conv_dw`` on an EfficientNet, whose last ``feature_info`` stage has no
    stride). Convolutions get the padding that keeps the size (even kernels are padded
    asymmetrically by a pre-forward hook; the parameters are unchanged); non-overlapping
    poolings (kernel = stride) become identities, as if built with stride 1.

    Args:
        model: the backbone, changed in place.
        name: its name, for error messages.

    Returns:
        Channels, height and width of the new map of a ``PROBE_SIZE`` image (twice as high and
        wide as before).

    Raises:
        ValueError: the model gives no feature map, or its map did not double (its last
            downsampling is made otherwise, e.g. by patch merging).
    """
    (_, height, width), strided_calls = _probe(model, name)
    for module, input_size, output_size in strided_calls:
        if output_size == (height, width) and input_size != output_size:
            _set_stride_one(module)
    (channels, new_height, new_width), _ = _probe(model, name)
    if (new_height, new_width) != (2 * height, 2 * width):
        raise ValueError(
            f"backbone {name!r}: last_stride=1 is not supported (its last downsampling is not "
            "a strided convolution or pooling); use last_stride=2"
        )
    return channels, new_height, new_width


def _probe(
    model: nn.Module, name: str
) -> tuple[tuple[int, int, int], list[tuple[nn.Module, tuple[int, ...], tuple[int, ...]]]]:
    """Runs a dummy image: (C, h, w) of its map and the calls of strided layers.

    Each call is (module, input (h, w), output (h, w)) of a strided convolution or pooling.
    """
    strided_calls: list[tuple[nn.Module, tuple[int, ...], tuple[int, ...]]] = []

    def record(module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> None:
        strided_calls.append((module, tuple(args[0].shape[-2:]), tuple(output.shape[-2:])))

    handles = [
        module.register_forward_hook(record)
        for module in model.modules()
        if isinstance(module, STRIDED_TYPES) and _pair(module.stride) != (1, 1)
    ]
    try:
        output = _run_probe(model)
    except Exception as error:
        raise ValueError(
            f"backbone {name!r} cannot run a {PROBE_SIZE[0]}x{PROBE_SIZE[1]} image "
            f"({type(error).__name__}: {error}); choose a convolutional timm model"
        ) from error
    finally:
        for handle in handles:
            handle.remove()
    if output.ndim != 4:
        raise ValueError(
            f"backbone {name!r} gives an output of shape {tuple(output.shape)}, not a feature "
            "map (N,C,h,w); choose a convolutional timm model"
        )
    channels, height, width = (int(size) for size in output.shape[1:])
    return (channels, height, width), strided_calls


def _run_probe(model: nn.Module) -> Tensor:
    was_training = model.training
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    model.eval()
    try:
        with torch.no_grad():
            return model(torch.zeros(1, 3, *PROBE_SIZE, device=device))
    finally:
        model.train(was_training)


def _set_stride_one(module: nn.Module) -> None:
    if isinstance(module, nn.Conv2d):
        _set_conv_stride_one(module)
        return
    kernel, stride = _pair(module.kernel_size), _pair(module.stride)
    if kernel == stride:
        module.kernel_size, module.padding = 1, 0
    module.stride = 1


def _set_conv_stride_one(conv: nn.Conv2d) -> None:
    conv.stride = (1, 1)
    if isinstance(conv, Conv2dSame):  # pads dynamically from the stride
        return
    total = [d * (k - 1) for k, d in zip(conv.kernel_size, conv.dilation)]
    if isinstance(conv.padding, tuple) and [2 * p for p in conv.padding] == total:
        return
    conv.padding = (0, 0)
    pad_h, pad_w = total
    conv.register_forward_pre_hook(
        SamePadding((pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
    )


class SamePadding:
    """Forward pre-hook zero-padding a convolution's input (a class, so models stay picklable).

    Args:
        pads: ``(left, right, top, bottom)`` as ``F.pad`` takes them.
    """

    def __init__(self, pads: tuple[int, int, int, int]) -> None:
        self.pads = pads

    def __call__(self, module: nn.Module, args: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """Returns the module's positional inputs with the first one padded."""
        return (F.pad(args[0], self.pads), *args[1:])


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """Reads the tensors of a local weights file, never unpickling Python objects.

    ``.safetensors`` files are read with safetensors, anything else with ``torch.load(...,
    weights_only=True)``. A ``state_dict``/``model`` wrapper and a ``module.`` key prefix
    (DistributedDataParallel) are removed; non-tensor entries are ignored.

    Args:
        path: the file.

    Returns:
        Tensor name -> tensor.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be read or holds no tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    state: object
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except Exception as error:
            raise ValueError(
                f"{path}: cannot read weights ({type(error).__name__}: {error})"
            ) from error
    else:
        from neo.utils.checkpoint_io import read_checkpoint

        state = read_checkpoint(path)
    while isinstance(state, Mapping):
        wrapped = next(
            (state[key] for key in WRAPPER_KEYS if isinstance(state.get(key), Mapping)), None
        )
        if wrapped is None:
            break
        state = wrapped
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    tensors = {str(key): value for key, value in state.items() if isinstance(value, Tensor)}
    if tensors and all(key.startswith(DDP_PREFIX) for key in tensors):
        tensors = {key[len(DDP_PREFIX) :]: value for key, value in tensors.items()}
    if not tensors:
        raise ValueError(f"{path}: holds no tensors")
    return tensors


def load_backbone_weights(model: nn.Module, path: Path) -> int:
    """Copies the tensors of a local weights file into a backbone.

    Only tensors whose name and shape match the backbone are loaded, so classifier tensors
    (``fc.*``, ``head.fc.*``, ``classifier.*``: the backbone has no classifier) are dropped. The
    backbone tensors the file lacks keep their values; their count is reported in one warning.

    Args:
        model: the backbone, changed in place.
        path: the weights file (see ``read_state_dict``).

    Returns:
        The number of tensors loaded.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be read or none of its tensors fits the backbone.
    """
    state = read_state_dict(path)
    own = model.state_dict()
    matching = {
        key: value
        for key, value in state.items()
        if key in own and tuple(own[key].shape) == tuple(value.shape)
    }
    if not matching:
        raise ValueError(
            f"{path}: none of its {len(state)} tensors matches the backbone's names and shapes "
            f"(e.g. {next(iter(state))!r} vs {next(iter(own))!r}); is it a weights file of this "
            "backbone?"
        )
    model.load_state_dict(matching, strict=False)
    missing = len(own) - len(matching)
    if missing:
        warnings.warn(
            f"{path}: {missing} of {len(own)} backbone tensors not in the file, left as built",
            stacklevel=2,
        )
    return len(matching)
