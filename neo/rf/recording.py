"""Validated, chunked reading of SigMF recordings.

All problems that would make a recording unusable are found when it is opened, each reported as a
one-line :class:`RecordingError` naming the file: a missing ``.sigmf-data`` file, a data file whose
size is not a whole number of samples or that ends before the captures or annotations do
(truncated), an unsupported datatype or several channels, a missing or non-positive sample rate,
and a recording shorter than one chunk (an error, so that a dataset never silently loses a file).

Annotations that cannot be drawn are skipped and counted (``Recording.skipped_annotations``), not
fatal: a non-positive ``core:sample_count``, only one of the two frequency edges, edges in the
wrong order, or a frequency span entirely outside the captured band. An annotation without
frequency edges covers the full band; one without ``core:sample_count`` runs to the end.

Opening reads only the metadata; samples are read chunk by chunk through ``sigmf``
(``read_samples``), and ``core:sha512`` is not verified because that would read the whole file.
Sample indices in captures and annotations are absolute (``core:offset`` is subtracted to get the
position in the data file); :class:`Annotation` and :class:`Capture` hold file positions.
"""

import json
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sigmf
from sigmf.sigmffile import dtype_info

_DATATYPE = re.compile(r"^[cr](f64|f32|i32|i16|u32|u16|i8|u8)(_le|_be)?$")


class RecordingError(ValueError):
    """A SigMF recording that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Capture:
    """One capture segment: from file sample ``sample_start`` on, centred at ``frequency`` Hz."""

    sample_start: int
    frequency: float


@dataclass(frozen=True)
class Annotation:
    """An annotated signal in file sample positions; edges in absolute Hz or None (full band)."""

    sample_start: int
    sample_count: int
    freq_lower_edge: float | None
    freq_upper_edge: float | None
    label: str


@dataclass(frozen=True)
class Chunk:
    """A run of samples of one recording."""

    index: int
    sample_start: int
    sample_count: int
    samples: np.ndarray


def chunk_spans(num_samples: int, chunk_samples: int, overlap: float) -> list[tuple[int, int]]:
    """Start and length of every whole chunk; a trailing partial chunk is left out.

    Args:
        num_samples: Samples in the recording.
        chunk_samples: Samples per chunk.
        overlap: Fraction of a chunk shared with the next one, in [0, 1).

    Returns:
        ``[(start, chunk_samples), ...]`` in order.
    """
    if chunk_samples < 1:
        raise ValueError(f"chunk must hold at least one sample, got {chunk_samples}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    step = max(1, round(chunk_samples * (1.0 - overlap)))
    return [(s, chunk_samples) for s in range(0, num_samples - chunk_samples + 1, step)]


class Recording:
    """An opened, validated SigMF recording (single channel) read chunk by chunk.

    Args:
        path: ``.sigmf-meta`` file (or its ``.sigmf-data`` file, or the recording's base name).

    Raises:
        FileNotFoundError: The metadata file does not exist.
        RecordingError: The recording is unusable (see module docstring).
    """

    def __init__(self, path: Path | str) -> None:
        meta_path = Path(path)
        if meta_path.suffix == ".sigmf-data":
            meta_path = meta_path.with_suffix(".sigmf-meta")
        elif meta_path.suffix != ".sigmf-meta":
            meta_path = meta_path.with_name(meta_path.name + ".sigmf-meta")
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path}: SigMF metadata file not found")
        self.meta_path = meta_path
        self.name = meta_path.name.removesuffix(".sigmf-meta")
        try:
            metadata = json.loads(meta_path.read_text())
            glob = metadata["global"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise self._error(f"not valid SigMF metadata ({err})") from err
        self._check_global(glob)
        data_path = self._data_path(glob)
        self.datatype: str = glob["core:datatype"]
        info = dtype_info(self.datatype)
        self.sample_size: int = info["sample_size"]
        self.is_complex: bool = info["is_complex"]
        self.sample_rate = float(glob["core:sample_rate"])
        offset = int(glob.get("core:offset", 0))
        self.offset = offset
        header = sum(int(c.get("core:header_bytes", 0)) for c in metadata.get("captures", []))
        trailing = int(glob.get("core:trailing_bytes", 0))
        payload = data_path.stat().st_size - header - trailing
        if payload < 0 or payload % self.sample_size:
            raise self._error(
                f"truncated data file {data_path.name}: {payload} sample bytes are not a multiple "
                f"of the {self.sample_size}-byte {self.datatype} sample"
            )
        self.num_samples = payload // self.sample_size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self._sigmf = sigmf.fromfile(meta_path, skip_checksum=True)
            except Exception as err:  # sigmf raises several unrelated types
                raise self._error(f"sigmf could not open it ({err})") from err
        self.captures = self._read_captures(metadata.get("captures", []), offset)
        self.skipped_annotations = 0
        self.annotations = self._read_annotations(metadata.get("annotations", []), offset)

    def _error(self, problem: str) -> RecordingError:
        return RecordingError(f"{self.meta_path}: {problem}")

    def _check_global(self, glob: dict) -> None:
        datatype = glob.get("core:datatype")
        if not isinstance(datatype, str) or not _DATATYPE.match(datatype.lower()):
            raise self._error(f"unsupported datatype {datatype!r}")
        if int(glob.get("core:num_channels", 1)) != 1:
            raise self._error(f"{glob['core:num_channels']} channels; only 1 is supported")
        rate = glob.get("core:sample_rate")
        if not isinstance(rate, int | float) or rate <= 0:
            raise self._error(f"missing or invalid core:sample_rate ({rate!r})")

    def _data_path(self, glob: dict) -> Path:
        if glob.get("core:metadata_only", False):
            raise self._error("metadata-only recording has no samples")
        dataset = glob.get("core:dataset")
        data_path = (
            self.meta_path.with_name(dataset)
            if dataset
            else self.meta_path.with_name(self.name + ".sigmf-data")
        )
        if not data_path.is_file():
            raise self._error(f"data file {data_path.name} is missing")
        return data_path

    def _read_captures(self, raw: list[dict], offset: int) -> tuple[Capture, ...]:
        captures = sorted(
            (
                Capture(
                    int(c.get("core:sample_start", offset)) - offset,
                    float(c.get("core:frequency", 0.0)),
                )
                for c in raw
            ),
            key=lambda c: c.sample_start,
        ) or [Capture(0, 0.0)]
        last = captures[-1].sample_start
        if last >= self.num_samples and last > 0:
            raise self._error(
                f"truncated data file: a capture starts at sample {last} but the data holds "
                f"{self.num_samples} samples"
            )
        return tuple(captures)

    def _read_annotations(self, raw: list[dict], offset: int) -> tuple[Annotation, ...]:
        kept = []
        band_lo = min(c.frequency for c in self.captures) - self.sample_rate / 2
        band_hi = max(c.frequency for c in self.captures) + self.sample_rate / 2
        for item in raw:
            start = int(item.get("core:sample_start", offset)) - offset
            count = int(item.get("core:sample_count", self.num_samples - start))
            end = start + count
            if end > self.num_samples:
                raise self._error(
                    f"truncated data file: an annotation ends at sample {end + offset} but the "
                    f"data holds {self.num_samples} samples"
                )
            lo, hi = item.get("core:freq_lower_edge"), item.get("core:freq_upper_edge")
            unusable = (
                start < 0
                or count <= 0
                or (lo is None) != (hi is None)
                or (lo is not None and (hi <= lo or hi <= band_lo or lo >= band_hi))
            )
            if unusable:
                self.skipped_annotations += 1
                continue
            kept.append(
                Annotation(
                    start,
                    count,
                    None if lo is None else float(lo),
                    None if hi is None else float(hi),
                    str(item.get("core:label", "signal")),
                )
            )
        if self.skipped_annotations:
            warnings.warn(
                f"{self.meta_path}: skipped {self.skipped_annotations} annotation(s) outside the "
                "recording or without a usable span",
                stacklevel=3,
            )
        return tuple(kept)

    @property
    def duration_s(self) -> float:
        """Length of the recording in seconds."""
        return self.num_samples / self.sample_rate

    def centre_frequency(self, sample: int) -> float:
        """``core:frequency`` of the capture segment that holds file sample ``sample``."""
        current = self.captures[0].frequency
        for capture in self.captures:
            if capture.sample_start > sample:
                break
            current = capture.frequency
        return current

    def read(self, start: int, count: int) -> np.ndarray:
        """``count`` samples from file position ``start`` as complex64 (fixed point in [-1, 1])."""
        if start < 0 or count < 1 or start + count > self.num_samples:
            raise ValueError(f"{self.meta_path}: cannot read [{start}, {start + count})")
        data = self._sigmf.read_samples(start_index=start, count=count)
        return np.asarray(data, dtype=np.complex64)

    def chunk_samples(self, chunk_duration_s: float) -> int:
        """Samples per chunk of ``chunk_duration_s`` seconds (rounded)."""
        if chunk_duration_s <= 0:
            raise ValueError(f"chunk_duration_s must be positive, got {chunk_duration_s}")
        return max(1, round(chunk_duration_s * self.sample_rate))

    def chunk_spans(
        self, chunk_duration_s: float = 0.2, overlap: float = 0.0
    ) -> list[tuple[int, int]]:
        """Spans of every whole chunk; raises RecordingError when there is not even one."""
        size = self.chunk_samples(chunk_duration_s)
        spans = chunk_spans(self.num_samples, size, overlap)
        if not spans:
            raise self._error(
                f"recording is shorter than one chunk ({self.num_samples} samples = "
                f"{self.duration_s:.4g} s < {chunk_duration_s} s)"
            )
        return spans

    def chunks(self, chunk_duration_s: float = 0.2, overlap: float = 0.0) -> Iterator[Chunk]:
        """Yield chunks one at a time; only the current chunk is held in memory."""
        for index, (start, count) in enumerate(self.chunk_spans(chunk_duration_s, overlap)):
            yield Chunk(index, start, count, self.read(start, count))
