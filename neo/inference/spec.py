"""What a deployed detector needs besides its weights, stored in every neo checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SPEC_KEY = "neo_inference_spec"
RESIZE_MODES = ("letterbox", "stretch")


@dataclass
class InferenceSpec:
    """How to call a trained detection task and how to read its output.

    Attributes:
        task_class: import path of the :class:`neo.tasks.DetectionTask` subclass.
        category_ids: dataset category id of each training label ``0..C-1``.
        class_names: name of each training label.
        input_size: ``(height, width)`` of the evaluation input, or ``None`` when unknown.
        resize: how an image is brought to ``input_size``: ``letterbox`` (fit inside keeping the
            aspect ratio, pad bottom/right) or ``stretch`` (resize both sides to it).
        size_divisor: the network pads its input bottom/right to a multiple of this.
        spectrogram: STFT settings of the training spectrograms (``nfft``, ``hop``,
            ``image_size``, ``chunk_duration_s``, ...), ``None`` for image detectors.
    """

    task_class: str
    category_ids: list[int]
    class_names: list[str]
    input_size: tuple[int, int] | None = None
    resize: str = "letterbox"
    size_divisor: int = 32
    spectrogram: dict[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        self.category_ids = [int(i) for i in self.category_ids]
        self.class_names = [str(n) for n in self.class_names]
        if len(self.category_ids) != len(self.class_names):
            raise ValueError(
                f"inference spec: {len(self.category_ids)} category ids but "
                f"{len(self.class_names)} class names"
            )
        if self.input_size is not None:
            size = tuple(int(v) for v in self.input_size)
            if len(size) != 2 or min(size) < 1:
                raise ValueError(f"inference spec: bad input_size {self.input_size!r}")
            self.input_size = size
        if self.resize not in RESIZE_MODES:
            raise ValueError(
                f"inference spec: resize must be one of {RESIZE_MODES}, got {self.resize!r}"
            )
        if self.spectrogram is not None:
            self.spectrogram = dict(self.spectrogram)

    @property
    def num_classes(self) -> int:
        """Number of object classes."""
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, strings and numbers (readable by the weights-only checkpoint loader)."""
        return {
            "task_class": self.task_class,
            "category_ids": list(self.category_ids),
            "class_names": list(self.class_names),
            "input_size": list(self.input_size) if self.input_size is not None else None,
            "resize": self.resize,
            "size_divisor": self.size_divisor,
            "spectrogram": dict(self.spectrogram) if self.spectrogram is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Any) -> InferenceSpec:
        """The spec written by :meth:`to_dict`; a ``ValueError`` names what is wrong."""
        if not isinstance(data, dict):
            raise ValueError(f"inference spec: expected a dictionary, got {type(data).__name__}")
        missing = [k for k in ("task_class", "category_ids", "class_names") if k not in data]
        if missing:
            raise ValueError(f"inference spec: missing {', '.join(missing)}")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        try:
            return cls(**known)
        except TypeError as e:
            raise ValueError(f"inference spec: {e}") from None
