"""Re-identification image transforms: the strong-baseline training augmentation and eval resize.

Both return an albumentations ``Compose`` called as ``transform(image=<HWC uint8 RGB>)["image"]``
that ends in ``ToTensorV2``: the output is a uint8 CHW tensor (normalisation happens in the
model).

Randomness: the steps of the training transform share one random stream, reseeded in each
DataLoader worker, each epoch whose workers start afresh and each rank, from the run seed
(``seed_everything``) and the transform's own ``seed`` when given (see
:mod:`neo.data.seeding`). A plain ``A.Compose(seed=s)`` would instead give every step the same
stream, and every forked worker the same draws.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import albumentations as A
import cv2
import numpy as np
from albumentations.pytorch import ToTensorV2

from neo.data.seeding import StreamSeed

# ImageNet mean in uint8 RGB, the fill of erased regions (zero once normalised).
IMAGENET_MEAN_UINT8: tuple[int, int, int] = (124, 116, 104)


class ReseededCompose(A.Compose):
    """``A.Compose`` whose steps share one random stream, reseeded per worker, epoch and rank.

    Args:
        transforms: the steps.
        seed: the transform's own seed; None derives the stream from the run seed alone.
    """

    def __init__(self, transforms: Sequence[Any], seed: int | None = None) -> None:
        super().__init__(list(transforms))
        self._stream_seed = StreamSeed(seed)
        self._reseed(self._stream_seed.initial())

    def _reseed(self, entropy: int | Sequence[int] | None) -> None:
        sequence = np.random.SeedSequence(entropy)
        rng = np.random.default_rng(sequence)
        py_random = random.Random(int(sequence.generate_state(1, dtype=np.uint64)[0]))
        self.set_random_state(rng, py_random)

    def __call__(self, *args: Any, force_apply: bool = False, **data: Any) -> dict[str, Any]:
        """Applies the steps, reseeding first when running in a new worker or epoch.

        Args:
            *args: not allowed by albumentations (targets are keyword arguments).
            force_apply: apply even when the compose's probability says no.
            **data: targets, e.g. ``image=<HWC uint8 RGB array>``.

        Returns:
            The transformed targets.
        """
        entropy = self._stream_seed.update()
        if entropy is not None:
            self._reseed(entropy)
        return super().__call__(*args, force_apply=force_apply, **data)


def _check_size(height: int, width: int, what: str) -> None:
    if height < 1 or width < 1:
        raise ValueError(f"{what}: height and width must be >= 1, got {height}x{width}")


def train_transform(
    height: int = 256,
    width: int = 128,
    flip_prob: float = 0.5,
    pad: int = 10,
    erasing_prob: float = 0.5,
    seed: int | None = None,
) -> A.Compose:
    """The strong-baseline ReID training augmentation.

    Resize to ``height`` x ``width``, horizontal flip, zero padding by ``pad`` pixels on every
    side followed by a random crop back to ``height`` x ``width``, random erasing (area 2-40 %,
    aspect 0.3-3.3, filled with the ImageNet mean), conversion to a uint8 CHW tensor.

    Args:
        height: output height in pixels.
        width: output width in pixels.
        flip_prob: probability of the horizontal flip.
        pad: padding before the random crop, in pixels; 0 leaves out pad and crop.
        erasing_prob: probability of random erasing.
        seed: the transform's own seed; None derives its stream from the run seed.

    Returns:
        The transform, called as ``transform(image=<HWC uint8 RGB>)["image"]``.

    Raises:
        ValueError: on a non-positive size, a negative pad or a probability outside [0, 1].
    """
    _check_size(height, width, "train_transform")
    if pad < 0:
        raise ValueError(f"train_transform: pad must be >= 0, got {pad}")
    for name, prob in (("flip_prob", flip_prob), ("erasing_prob", erasing_prob)):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"train_transform: {name} must be in [0, 1], got {prob}")
    steps: list[Any] = [
        A.Resize(height, width, interpolation=cv2.INTER_LINEAR),
        A.HorizontalFlip(p=flip_prob),
    ]
    if pad:
        steps += [
            A.Pad(padding=pad, fill=0, border_mode=cv2.BORDER_CONSTANT),
            A.RandomCrop(height, width),
        ]
    steps += [
        A.Erasing(scale=(0.02, 0.4), ratio=(0.3, 3.3), fill=IMAGENET_MEAN_UINT8, p=erasing_prob),
        ToTensorV2(),
    ]
    return ReseededCompose(steps, seed=seed)


def eval_transform(height: int = 256, width: int = 128) -> A.Compose:
    """The deterministic ReID eval transform: resize, then a uint8 CHW tensor.

    Args:
        height: output height in pixels.
        width: output width in pixels.

    Returns:
        The transform, called as ``transform(image=<HWC uint8 RGB>)["image"]``.

    Raises:
        ValueError: on a non-positive size.
    """
    _check_size(height, width, "eval_transform")
    return A.Compose([A.Resize(height, width, interpolation=cv2.INTER_LINEAR), ToTensorV2()])
