"""Re-identification datasets: pre-cropped box images (with an LRU cache) or crops cut from frames.

Both datasets return ``(image, label)`` with ``image`` a uint8 CHW RGB torch tensor: the output of
``transform(image=<HWC uint8 RGB array>)["image"]`` (an albumentations ``Compose`` ending in
``ToTensorV2``, see :mod:`neo.data.reid.transforms`) when a transform is given, else the decoded
image itself in CHW order.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from neo.data.problems import DatasetError
from neo.data.reid.records import BoxRecord
from neo.data.seeding import SampleKey, keyed

cv2.setNumThreads(1)

Transform = Callable[..., dict[str, Any]]


def _decode_bytes(data: bytes, path: str) -> np.ndarray:
    """Decodes encoded image bytes to an RGB uint8 array, naming ``path`` when it cannot."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"{path}: cannot decode image (corrupt or not an image file)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_bytes(path: str) -> bytes:
    """The bytes of an image file; a missing or unreadable file is a DatasetError naming it."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file not found") from None
    except OSError as error:
        raise DatasetError(f"{path}: cannot read image file ({error.strerror})") from None


def _read_bgr(path: str) -> np.ndarray:
    """Decodes an image file to a BGR uint8 array; a DatasetError names a missing or bad file."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        if not Path(path).is_file():
            raise DatasetError(f"{path}: image file not found")
        raise DatasetError(f"{path}: cannot decode image (corrupt or not an image file)")
    return image


def _to_output(image: np.ndarray, transform: Transform | None) -> torch.Tensor:
    """Applies the transform to an HWC RGB array, or returns the array as a CHW uint8 tensor."""
    if transform is not None:
        return transform(image=image)["image"]
    return torch.from_numpy(image).permute(2, 0, 1)


class CroppedBBoxDataset(Dataset):
    """Pre-cropped box images with their identity labels, read through a bounded LRU cache.

    The cache (an ``OrderedDict``, least recently used entry evicted first) holds by default the
    encoded file bytes of up to ``cache_size`` images (small; saves the disk read) or, with
    ``cache_decoded=True``, the decoded uint8 RGB arrays (about ``H * W * 3`` bytes each; saves
    decoding too).

    Every process has its own cache: a cache filled before the process was forked (or pickled
    to a spawned DataLoader worker) is dropped in the new process (the process id is remembered
    and the cache reset when it changes). Memory is therefore bounded by
    ``cache_size x item size x (num_workers + 1)``. Use ``persistent_workers=True`` so that the
    worker caches outlive an epoch; as a shuffling sampler hands each worker different indices
    every epoch, a worker's cache fills over the first epochs.

    Args:
        img_paths: cropped image files, one per sample.
        labels: identity label of each sample (-1 for unknown identities).
        transform: albumentations ``Compose`` ending in ``ToTensorV2``; None returns the decoded
            image as a CHW uint8 tensor.
        use_cache: whether to cache images at all.
        cache_size: most images cached per process; must be > 0 when ``use_cache``.
        cache_decoded: cache decoded arrays instead of encoded bytes.

    Raises:
        ValueError: when ``img_paths`` and ``labels`` differ in length, or ``cache_size <= 0``
            with ``use_cache``.
    """

    def __init__(
        self,
        img_paths: Sequence[str | Path],
        labels: Sequence[int],
        transform: Transform | None = None,
        use_cache: bool = True,
        cache_size: int = 10000,
        cache_decoded: bool = False,
    ) -> None:
        if len(img_paths) != len(labels):
            raise ValueError(
                f"CroppedBBoxDataset: {len(img_paths)} image paths but {len(labels)} labels; "
                "give one label per image"
            )
        if use_cache and cache_size <= 0:
            raise ValueError(
                f"cache_size must be > 0 when use_cache is True, got {cache_size}; "
                "pass use_cache=False to read every image from disk"
            )
        self.img_paths = [str(p) for p in img_paths]
        self.labels = [int(label) for label in labels]
        self.transform = transform
        self.use_cache = use_cache
        self.cache_size = int(cache_size)
        self.cache_decoded = cache_decoded
        self._reset_cache()

    def _reset_cache(self) -> None:
        self._cache: OrderedDict[int, bytes | np.ndarray] = OrderedDict()
        self._hits = 0
        self._misses = 0
        self._pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        # A spawned worker would drop the cache anyway: do not copy it over.
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()
        return state

    def __len__(self) -> int:
        return len(self.img_paths)

    def cache_info(self) -> dict[str, int]:
        """Cache statistics of this process since its cache was last reset.

        Returns:
            ``hits`` and ``misses`` (lookups), and ``size`` (entries held now).
        """
        return {"hits": self._hits, "misses": self._misses, "size": len(self._cache)}

    def _cached(self, index: int) -> bytes | np.ndarray | None:
        if os.getpid() != self._pid:
            self._reset_cache()
        entry = self._cache.get(index)
        if entry is None:
            self._misses += 1
            return None
        self._hits += 1
        self._cache.move_to_end(index)
        return entry

    def _store(self, index: int, entry: bytes | np.ndarray) -> None:
        self._cache[index] = entry
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def load_image(self, index: int) -> np.ndarray:
        """Decodes sample ``index`` (through the cache) without the transform.

        Args:
            index: sample index.

        Returns:
            (H, W, 3) uint8 RGB array, the caller's own (never the cached array itself).

        Raises:
            DatasetError: when the file is missing, unreadable or not an image.
        """
        path = self.img_paths[index]
        if not self.use_cache:
            return cv2.cvtColor(_read_bgr(path), cv2.COLOR_BGR2RGB)
        entry = self._cached(index)
        if self.cache_decoded:
            if entry is None:
                entry = _decode_bytes(_read_bytes(path), path)
                self._store(index, entry)
            return entry.copy()  # type: ignore[union-attr]
        if entry is None:
            entry = _read_bytes(path)
            image = _decode_bytes(entry, path)  # decoded before caching: bad files never cached
            self._store(index, entry)
            return image
        return _decode_bytes(entry, path)  # type: ignore[arg-type]

    def __getitem__(self, item: int | SampleKey) -> tuple[torch.Tensor, int]:
        """The (transformed) image of sample ``item`` and its label.

        Args:
            item: sample index, or the training sampler's key of one.

        Returns:
            (uint8 CHW RGB tensor, label).
        """
        with keyed(item) as index:
            return _to_output(self.load_image(index), self.transform), self.labels[index]


def clip_box(record: BoxRecord, frame_height: int, frame_width: int) -> tuple[int, int, int, int]:
    """The box of ``record`` clipped to the frame.

    Args:
        record: the box.
        frame_height: frame height in pixels.
        frame_width: frame width in pixels.

    Returns:
        (x0, y0, x1, y1) pixel bounds inside the frame (empty when x1 <= x0 or y1 <= y0).
    """
    x0, y0 = max(0, int(record.x)), max(0, int(record.y))
    x1 = min(frame_width, int(record.x) + int(record.w))
    y1 = min(frame_height, int(record.y) + int(record.h))
    return x0, y0, x1, y1


class FrameCropDataset(Dataset):
    """Boxes cut from their full frames at load time (the fallback when no crops were written).

    Every item decodes its whole frame (``record.frame_path``) and crops the box, clipped to the
    frame; the output contract is that of :class:`CroppedBBoxDataset`.

    Args:
        records: the boxes; labels are ``record.label``.
        transform: albumentations ``Compose`` ending in ``ToTensorV2``; None returns the crop as
            a CHW uint8 tensor.
    """

    def __init__(self, records: Sequence[BoxRecord], transform: Transform | None = None) -> None:
        self.records = list(records)
        self.labels = [int(r.label) for r in self.records]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def load_image(self, index: int) -> np.ndarray:
        """Decodes the frame of box ``index`` and crops the box, without the transform.

        Args:
            index: sample index.

        Returns:
            (h, w, 3) uint8 RGB crop.

        Raises:
            DatasetError: when the frame is missing or unreadable, or the box lies outside it.
        """
        record = self.records[index]
        frame = _read_bgr(record.frame_path)
        x0, y0, x1, y1 = clip_box(record, *frame.shape[:2])
        if x1 <= x0 or y1 <= y0:
            row = f" (CSV row {record.row})" if record.row >= 0 else ""
            raise DatasetError(
                f"{record.frame_path}: box x={record.x} y={record.y} w={record.w} h={record.h}"
                f"{row} lies outside the {frame.shape[1]}x{frame.shape[0]} frame; fix or drop it"
            )
        return cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_BGR2RGB)

    def __getitem__(self, item: int | SampleKey) -> tuple[torch.Tensor, int]:
        """The (transformed) crop of box ``item`` and its label.

        Args:
            item: sample index, or the training sampler's key of one.

        Returns:
            (uint8 CHW RGB tensor, label).
        """
        with keyed(item) as index:
            return _to_output(self.load_image(index), self.transform), self.labels[index]
