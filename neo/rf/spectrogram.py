"""Complex IQ to a normalised spectrogram image (power in dB, frequency upward, time across).

Layout (shared with :mod:`neo.rf.boxes`): the STFT has no centre padding; frame ``t`` covers
samples ``[t·hop, t·hop + nfft)``, so ``F = 1 + (N − nfft) // hop`` frames, and stands for the
time at its centre, ``t·hop + nfft/2`` (the convention :mod:`neo.rf.boxes` maps boxes with). Bins
are fftshifted and flipped, so image row 0 is the highest frequency (just below +fs/2) and the last
row is −fs/2.

Resizing to the image size is an *area* resize of linear power done before the logarithm: every
output pixel is the mean power over the exact rectangle of (frame, bin) cells it covers, with
fractional cells weighted by their overlap. This equals integrating the spectrogram over the
pixel, so the total power is preserved and no frame or bin is skipped or aliased; it is also far
cheaper than taking the logarithm of the full-resolution spectrogram and resizing afterwards.

Power is ``|X|² / Σ w²``, so white noise of unit per-sample power reads 0 dB whatever the window.
"""

import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

_WINDOWS = {
    "hann": torch.hann_window,
    "hamming": torch.hamming_window,
    "blackman": torch.blackman_window,
    "rect": torch.ones,
}
_SUBSAMPLE_FOR_PERCENTILES = 1 << 16
_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _single_threaded() -> None:
    torch.set_num_threads(1)


def _cpu_pool(workers: int) -> ThreadPoolExecutor:
    """Worker threads that each run torch single-threaded (recreated after a fork)."""
    key = (os.getpid(), workers)
    if key not in _POOLS:
        _POOLS[key] = ThreadPoolExecutor(workers, initializer=_single_threaded)
    return _POOLS[key]


def area_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Gather indices and weights of a 1-D area resize from ``n_in`` cells to ``n_out`` cells.

    Output cell ``j`` covers input interval ``[j·s, (j+1)·s)`` with ``s = n_in / n_out``; its value
    is ``Σ_k weights[k, j] · input[indices[k, j]]``, the mean of the input over that interval.

    Args:
        n_in: Number of input cells.
        n_out: Number of output cells.

    Returns:
        ``(indices, weights)``, both of shape ``(K, n_out)`` where ``K`` is the most input cells any
        output cell touches; unused taps have weight 0.
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"area resize needs positive sizes, got {n_in} -> {n_out}")
    scale = n_in / n_out
    starts = np.arange(n_out, dtype=np.float64) * scale
    ends = starts + scale
    first = np.floor(starts).astype(np.int64)
    taps = min(math.ceil(scale) + 1, n_in)
    indices = first[None, :] + np.arange(taps)[:, None]
    overlap = np.minimum(indices + 1, ends[None, :]) - np.maximum(indices, starts[None, :])
    weights = np.clip(overlap, 0.0, None) / scale
    weights[indices >= n_in] = 0.0
    return np.clip(indices, 0, n_in - 1), weights


def flipped_fftshift_order(nfft: int) -> np.ndarray:
    """Natural FFT bin shown at each image position (position 0 = highest frequency).

    Args:
        nfft: FFT length.

    Returns:
        ``order[p]`` is the natural bin index shown at flipped, shifted position ``p``.
    """
    positions = np.arange(nfft)
    return ((nfft - 1 - positions) - nfft // 2) % nfft


class Spectrogram(nn.Module):
    """Map a 1-D complex IQ tensor to a float image in [0, 1] of shape ``(H, W)``.

    The same code runs on CPU and CUDA: move the module with ``.to(device)`` and pass IQ on that
    device. Real-valued input is treated as complex with zero imaginary part (its image is mirrored
    about 0 Hz).

    Normalisation: values in dB map linearly from ``floor`` (0) to ``ceiling`` (1), then clip.
    ``floor_db``/``ceiling_db`` fix them; otherwise they are the ``floor_percentile`` and
    ``ceiling_percentile`` of the image (estimated on a regular subsample of at most 65,536 pixels),
    and then the ceiling is raised to at least ``floor + min_range_db`` so that noise-only chunks
    are not stretched to full contrast.

    Args:
        nfft: FFT length (frequency bins).
        hop: Samples between consecutive frames.
        window: One of ``hann``, ``hamming``, ``blackman``, ``rect`` (periodic forms).
        image_size: Output ``(height, width)``; an int means square.
        floor_percentile: Percentile of the dB image mapped to 0 when ``floor_db`` is None.
        ceiling_percentile: Percentile mapped to 1 when ``ceiling_db`` is None.
        floor_db: Fixed dB value mapped to 0 (overrides the percentile).
        ceiling_db: Fixed dB value mapped to 1 (overrides the percentile).
        min_range_db: Smallest allowed ``ceiling − floor`` in dB.
        block_frames: Frames transformed per step on CPU (keeps the working set in cache);
            CUDA transforms all frames at once.
        cpu_threads: CPU worker threads for the blocks; None uses ``torch.get_num_threads()``.
            Blocks are spread over threads that each run torch single-threaded, which scales
            like intra-op parallelism on an idle machine and degrades far more gracefully than
            many short OpenMP regions when cores are shared with other processes.
    """

    def __init__(
        self,
        nfft: int = 4096,
        hop: int = 2048,
        window: str = "hann",
        image_size: int | tuple[int, int] = (1024, 1024),
        floor_percentile: float = 10.0,
        ceiling_percentile: float = 99.9,
        floor_db: float | None = None,
        ceiling_db: float | None = None,
        min_range_db: float = 20.0,
        block_frames: int = 128,
        cpu_threads: int | None = None,
    ) -> None:
        super().__init__()
        if nfft < 2 or hop < 1:
            raise ValueError(f"nfft must be >= 2 and hop >= 1, got nfft={nfft}, hop={hop}")
        if window not in _WINDOWS:
            raise ValueError(f"unknown window {window!r}; choose one of {sorted(_WINDOWS)}")
        height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
        if height < 1 or width < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        if not 0.0 <= floor_percentile < ceiling_percentile <= 100.0:
            raise ValueError("need 0 <= floor_percentile < ceiling_percentile <= 100")
        self.nfft, self.hop, self.height, self.width = nfft, hop, height, width
        self.floor_percentile, self.ceiling_percentile = floor_percentile, ceiling_percentile
        self.floor_db, self.ceiling_db, self.min_range_db = floor_db, ceiling_db, min_range_db
        self.block_frames = max(1, block_frames)
        self.cpu_threads = cpu_threads
        win = _WINDOWS[window](nfft, dtype=torch.float32)
        self.register_buffer("window", win, persistent=False)
        self._power_scale = 1.0 / float((win.double() ** 2).sum())
        # nfft a multiple of an even height: sum whole groups of bins in natural FFT order and
        # put the groups in display order once per image (fftshift + flip is a row permutation)
        self._grouped = nfft % height == 0 and height % 2 == 0
        if self._grouped:
            self._power_scale /= nfft // height
            rows = (height // 2 - 1 - np.arange(height)) % height
            freq_idx, freq_w = rows[None, :], np.ones((1, height))
        else:
            freq_idx, freq_w = area_weights(nfft, height)
            freq_idx = flipped_fftshift_order(nfft)[freq_idx]
        self.register_buffer("_freq_idx", torch.as_tensor(freq_idx), persistent=False)
        self.register_buffer("_freq_w", torch.as_tensor(freq_w, dtype=torch.float32), False)
        self._time_cache: dict[tuple[int, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    def num_frames(self, num_samples: int) -> int:
        """Number of STFT frames for ``num_samples`` samples (0 when shorter than one frame)."""
        return 0 if num_samples < self.nfft else 1 + (num_samples - self.nfft) // self.hop

    def _frame_power(self, frames: torch.Tensor) -> torch.Tensor:
        """Frame powers reduced over frequency: ``(n, nfft)`` complex frames -> ``(n, H)``.

        Rows come in natural FFT group order when ``_grouped`` (see ``_time_reduce``), else in
        display order.
        """
        spectrum = torch.fft.fft(frames * self.window, dim=-1)
        parts = torch.view_as_real(spectrum)
        n = frames.shape[0]
        if self._grouped:
            # |X|² summed over each group of bins = squared 2-norm of its (re, im) parts
            grouped = parts.reshape(n, self.height, -1)
            natural = torch.linalg.vector_norm(grouped, dim=-1).square_()
            return natural
        power = torch.linalg.vector_norm(parts, dim=-1).square_()
        out = power[:, self._freq_idx[0]] * self._freq_w[0]
        for k in range(1, self._freq_idx.shape[0]):
            out += power[:, self._freq_idx[k]] * self._freq_w[k]
        return out

    def _time_weights(self, frames: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Area-resize taps over frames, with the power normalisation folded into the weights."""
        key = (frames, device)
        if key not in self._time_cache:
            idx, w = area_weights(frames, self.width)
            self._time_cache[key] = (
                torch.as_tensor(idx, device=device),
                torch.as_tensor(w * self._power_scale, dtype=torch.float32, device=device),
            )
        return self._time_cache[key]

    def _time_reduce(
        self, per_frame: torch.Tensor, idx: torch.Tensor, w: torch.Tensor
    ) -> torch.Tensor:
        """``(frames, H)`` -> ``(H, columns)`` in display order for the columns of ``idx``/``w``."""
        out = per_frame[idx[0]] * w[0, :, None]
        for k in range(1, idx.shape[0]):
            out += per_frame[idx[k]] * w[k, :, None]
        if self._grouped:
            out = out[:, self._freq_idx[0]]
        return out.t()

    def _workers(self, iq: torch.Tensor) -> int:
        return 1 if iq.is_cuda else max(1, self.cpu_threads or torch.get_num_threads())

    def power(self, iq: torch.Tensor) -> torch.Tensor:
        """Area-resized linear power, shape ``(H, W)``, row 0 = highest frequency.

        Args:
            iq: 1-D complex (or real) tensor of samples.

        Returns:
            Mean power per pixel, normalised so that unit-power white noise reads 1.
        """
        if iq.ndim != 1:
            raise ValueError(f"expected 1-D IQ, got shape {tuple(iq.shape)}")
        if not iq.is_complex() or iq.dtype != torch.complex64:
            iq = iq.to(torch.complex64)
        num = self.num_frames(iq.shape[0])
        if num == 0:
            raise ValueError(f"need at least nfft={self.nfft} samples, got {iq.shape[0]}")
        frames = iq.unfold(0, self.nfft, self.hop)
        time_idx, time_w = self._time_weights(num, iq.device)
        if iq.is_cuda:
            return self._time_reduce(self._frame_power(frames), time_idx, time_w).contiguous()

        per_frame = torch.empty(num, self.height, dtype=torch.float32)
        image = torch.empty(self.height, self.width, dtype=torch.float32)

        def frame_block(start: int) -> None:
            stop = min(num, start + self.block_frames)
            per_frame[start:stop] = self._frame_power(frames[start:stop])

        def column_block(bounds: tuple[int, int]) -> None:
            a, b = bounds
            image[:, a:b] = self._time_reduce(per_frame, time_idx[:, a:b], time_w[:, a:b])

        starts = range(0, num, self.block_frames)
        workers = min(self._workers(iq), len(starts))
        edges = np.linspace(0, self.width, min(workers, self.width) + 1).astype(int)
        columns = list(itertools.pairwise(edges))
        if workers > 1:
            pool = _cpu_pool(workers)
            list(pool.map(frame_block, starts))
            list(pool.map(column_block, columns))
        else:
            for start in starts:
                frame_block(start)
            for bounds in columns:
                column_block(bounds)
        return image

    def normalise(self, power: torch.Tensor) -> torch.Tensor:
        """Power -> dB -> [0, 1] with the configured floor and ceiling."""
        db = power.clamp_min(1e-30).log10_().mul_(10.0)
        floor, ceiling = self.floor_db, self.ceiling_db
        if floor is not None and ceiling is not None:
            if ceiling <= floor:
                raise ValueError(f"ceiling_db {ceiling} must exceed floor_db {floor}")
        else:
            flat = db.reshape(-1)
            step = max(1, flat.numel() // _SUBSAMPLE_FOR_PERCENTILES)
            levels = torch.tensor(
                [self.floor_percentile / 100.0, self.ceiling_percentile / 100.0], device=db.device
            )
            low, high = torch.quantile(flat[::step], levels).tolist()
            floor = low if floor is None else floor
            ceiling = high if ceiling is None else ceiling
            ceiling = max(ceiling, floor + self.min_range_db)
        return db.sub_(floor).div_(ceiling - floor).clamp_(0.0, 1.0)

    def forward(self, iq: torch.Tensor) -> torch.Tensor:
        """Image in [0, 1], shape ``(H, W)``, frequency increasing upward, time along columns."""
        power = self.power(iq)
        workers = self._workers(iq)
        if workers > 1:  # a short single-threaded step: cheaper than waking a thread team
            return _cpu_pool(workers).submit(self.normalise, power).result()
        return self.normalise(power)
