"""SigMF annotations <-> spectrogram image boxes, in the layout of :mod:`neo.rf.spectrogram`.

Time uses the centred-frame convention, in both directions: frame ``j`` transforms samples
``[j·hop, j·hop + nfft)``, so it stands for the samples *centred* at ``j·hop + nfft/2``, and in
the image it fills the cell ``[j, j + 1)`` of frame units, whose centre is ``j + 1/2``. Hence, with
``s`` a sample index relative to the chunk start,

    x = (s − (nfft − hop) / 2) / hop        and back        s = x · hop + (nfft − hop) / 2.

A burst starting at sample ``s0`` gives half its power to the frame centred on ``s0``, so box
edges sit on the signal's half-power edges (mapping ``s`` to the frame that *starts* there would
put them ``nfft / (2·hop) − 1/2`` frames late). Frequency, with ``f = edge − core:frequency`` of
the capture: ``y = (fs/2 − f) / fs · nfft`` (row 0 is +fs/2). Pixels are ``x · W / F`` and
``y · H / nfft`` with ``F`` frames per chunk. A bin's own centre is half a bin away from this line,
an offset of at most ``H / (2·nfft)`` pixels.
"""

from collections.abc import Callable
from dataclasses import dataclass

from neo.rf.recording import Annotation


@dataclass(frozen=True)
class Geometry:
    """How one chunk of samples becomes an image.

    Args:
        sample_rate: Samples per second (complex baseband).
        nfft: FFT length.
        hop: Samples between frames.
        chunk_samples: Samples per chunk.
        width: Image width in pixels.
        height: Image height in pixels.
    """

    sample_rate: float
    nfft: int
    hop: int
    chunk_samples: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.chunk_samples < self.nfft:
            raise ValueError(
                f"a chunk of {self.chunk_samples} samples is shorter than nfft={self.nfft}"
            )

    @property
    def num_frames(self) -> int:
        """STFT frames per chunk."""
        return 1 + (self.chunk_samples - self.nfft) // self.hop

    @property
    def frame_offset(self) -> float:
        """Samples from a chunk start to the left edge of image column 0: ``(nfft − hop) / 2``."""
        return (self.nfft - self.hop) / 2

    def sample_to_x(self, sample: float) -> float:
        """Image x (pixels) of a sample index relative to the chunk start."""
        return (sample - self.frame_offset) / self.hop * self.x_scale

    def x_to_sample(self, x: float) -> float:
        """Sample index relative to the chunk start at image x (pixels), as ``sample_to_x``⁻¹."""
        return x / self.x_scale * self.hop + self.frame_offset

    @property
    def x_scale(self) -> float:
        """Image pixels per frame."""
        return self.width / self.num_frames

    @property
    def y_scale(self) -> float:
        """Image pixels per frequency bin."""
        return self.height / self.nfft


@dataclass(frozen=True)
class Box:
    """A labelled box in image pixels (``x`` = time, ``y`` = frequency, row 0 = highest)."""

    label: str
    x_min: float
    y_min: float
    x_max: float
    y_max: float

    def as_json(self, digits: int = 2) -> dict:
        """The seed's ``bboxes`` entry."""
        return {
            "label": self.label,
            "x_min": round(self.x_min, digits),
            "y_min": round(self.y_min, digits),
            "x_max": round(self.x_max, digits),
            "y_max": round(self.y_max, digits),
        }


def annotation_box(
    annotation: Annotation, centre_frequency: float, chunk_start: int, geometry: Geometry
) -> Box:
    """Unclipped box of ``annotation`` in the image of the chunk starting at ``chunk_start``."""
    fs, nfft = geometry.sample_rate, geometry.nfft
    if annotation.freq_lower_edge is None or annotation.freq_upper_edge is None:
        f_lo, f_hi = -fs / 2, fs / 2
    else:
        f_lo = annotation.freq_lower_edge - centre_frequency
        f_hi = annotation.freq_upper_edge - centre_frequency
    x0 = geometry.sample_to_x(annotation.sample_start - chunk_start)
    x1 = geometry.sample_to_x(annotation.sample_start + annotation.sample_count - chunk_start)
    y0 = (fs / 2 - f_hi) / fs * nfft
    y1 = (fs / 2 - f_lo) / fs * nfft
    sy = geometry.y_scale
    return Box(annotation.label, x0, y0 * sy, x1, y1 * sy)


def clip_box(box: Box, geometry: Geometry) -> Box:
    """``box`` clipped to the image (may become empty)."""
    return Box(
        box.label,
        min(max(box.x_min, 0.0), geometry.width),
        min(max(box.y_min, 0.0), geometry.height),
        min(max(box.x_max, 0.0), geometry.width),
        min(max(box.y_max, 0.0), geometry.height),
    )


def chunk_boxes(
    annotations: tuple[Annotation, ...] | list[Annotation],
    centre_frequency_at: Callable[[int], float],
    chunk_start: int,
    geometry: Geometry,
    min_size_px: float = 2.0,
) -> tuple[list[Box], int]:
    """Boxes of the annotations that overlap one chunk, clipped to it.

    Args:
        annotations: Annotations in file sample positions.
        centre_frequency_at: Maps a file sample index to the capture's centre frequency in Hz.
        chunk_start: First sample of the chunk.
        geometry: Image geometry of the chunk.
        min_size_px: Boxes narrower or shorter than this after clipping are dropped.

    Returns:
        ``(boxes, dropped)``: kept boxes, and how many annotations overlapping the chunk were
        dropped as too small.
    """
    boxes, dropped = [], 0
    chunk_end = chunk_start + geometry.chunk_samples
    for annotation in annotations:
        ann_end = annotation.sample_start + annotation.sample_count
        if ann_end <= chunk_start or annotation.sample_start >= chunk_end:
            continue
        centre = centre_frequency_at(max(annotation.sample_start, chunk_start))
        box = clip_box(annotation_box(annotation, centre, chunk_start, geometry), geometry)
        if box.x_max - box.x_min < min_size_px or box.y_max - box.y_min < min_size_px:
            dropped += 1
            continue
        boxes.append(box)
    return boxes, dropped


def box_to_annotation(
    box: Box, chunk_start: int, centre_frequency: float, geometry: Geometry, sample_offset: int = 0
) -> dict:
    """Inverse of :func:`annotation_box`: a SigMF annotation for a box (e.g. a detection).

    Args:
        box: Box in image pixels of the chunk.
        chunk_start: First file sample of the chunk.
        centre_frequency: ``core:frequency`` of the capture in Hz.
        geometry: Image geometry of the chunk.
        sample_offset: The recording's ``core:offset``, added to make indices absolute.

    Returns:
        Dict with ``core:sample_start``, ``core:sample_count``, ``core:freq_lower_edge``,
        ``core:freq_upper_edge`` and ``core:label``.
    """
    fs, nfft = geometry.sample_rate, geometry.nfft
    start = chunk_start + round(geometry.x_to_sample(box.x_min))
    end = chunk_start + round(geometry.x_to_sample(box.x_max))
    f_hi = fs / 2 - box.y_min / geometry.y_scale * fs / nfft
    f_lo = fs / 2 - box.y_max / geometry.y_scale * fs / nfft
    return {
        "core:sample_start": start + sample_offset,
        "core:sample_count": max(1, end - start),
        "core:freq_lower_edge": centre_frequency + f_lo,
        "core:freq_upper_edge": centre_frequency + f_hi,
        "core:label": box.label,
    }
