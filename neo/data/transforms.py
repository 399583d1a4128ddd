"""16:9 detection transforms: multi-scale letterboxed training augmentation and exact eval resize.

Every output image is a canvas whose height and width are multiples of 32. The image content is
resized (aspect ratio preserved, never stretched) to fit inside the canvas and placed at the top
left; the bottom and right are filled with ``PAD_VALUE`` (114, a neutral grey close to the
ImageNet mean, so padding is almost zero after normalisation). Boxes are ``pascal_voc`` xyxy in
pixels and follow every geometric step exactly.

The training pipeline is an albumentations ``Compose`` of two steps, written for speed (the stock
transforms each allocate a new full-size image, and fresh memory pages are the dominant cost):

1. ``AffineColorJitter``: brightness, contrast, saturation and hue as one 3×4 colour matrix applied
   by a single ``cv2.transform`` pass on uint8 (no float copy), into a reused per-thread buffer.
2. ``Letterbox``: an optional bbox-safe random crop that keeps the image aspect ratio (area
   fraction in [0.5, 1]; the window always contains *all* boxes, so no object is ever cut), one
   ``cv2.resize`` of the crop window straight into the content region of a new canvas, an
   in-place horizontal flip of that region, and padding of the rest.

Randomness: albumentations 2 ``Compose(seed=s)`` seeds *every* transform with the same ``s``, so
their streams are copies of one another (their first draws coincide, and two transforms that draw
equally, e.g. HorizontalFlip and VerticalFlip, flip together on every call); here all steps share
one generator pair instead. ``TrainTransform`` reseeds that pair in each DataLoader worker, each
epoch whose workers start afresh, and from the run seed (``seed_everything``) when it has no seed
of its own (see :mod:`neo.data.seeding`), so runs with the same seed augment alike.

Multi-scale training draws one canvas per batch (the training sampler of
:mod:`neo.data.resumable` passes it with each sample key); called without a canvas,
``TrainTransform`` draws one per sample.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import albumentations as A
import cv2
import numpy as np

from neo.data.seeding import StreamSeed

PAD_VALUE = 114
STRIDE = 32
DEFAULT_EVAL_SIZE: tuple[int, int] = (1088, 1920)
# The 16:9 sizes 1600×900 … 2240×1260 (scales 0.83–1.17 of 1920×1080) with each height rounded
# up to a multiple of 32; a 1920×1080 frame fills the full width and leaves 2–28 padded rows.
DEFAULT_TRAIN_SIZES: tuple[tuple[int, int], ...] = (
    (928, 1600),
    (992, 1760),
    (1088, 1920),
    (1184, 2080),
    (1280, 2240),
)
_MAX_ASPECT_DEVIATION = 0.25

# RGB -> YIQ; hue rotation and saturation act on the (I, Q) chroma plane only.
_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=np.float64
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)
_LUMA = _RGB_TO_YIQ[0]


def round_up_to_multiple(x: int, m: int = STRIDE) -> int:
    """Smallest multiple of ``m`` that is greater than or equal to ``x``.

    Args:
        x: Non-negative integer.
        m: Positive multiple.

    Returns:
        ``x`` rounded up to a multiple of ``m``.
    """
    if m <= 0:
        raise ValueError(f"round_up_to_multiple: m must be positive, got {m}")
    return -(-int(x) // m) * m


def _check_size(size: Sequence[int], what: str) -> tuple[int, int]:
    if len(size) != 2:
        raise ValueError(f"{what}: expected an (h, w) pair, got {size!r}")
    h, w = (int(v) for v in size)
    for name, v in (("height", h), ("width", w)):
        if v <= 0 or v % STRIDE:
            raise ValueError(
                f"{what}: {name} {v} of size {(h, w)} is not a positive multiple of {STRIDE}"
            )
    return h, w


def _fit_scale(src_hw: tuple[int, int], canvas_hw: tuple[int, int]) -> tuple[int, int]:
    """Size (h, w) of ``src_hw`` resized, aspect preserved, to fit inside ``canvas_hw``."""
    (h, w), (ch, cw) = src_hw, canvas_hw
    s = min(ch / h, cw / w)
    return max(1, min(ch, round(h * s))), max(1, min(cw, round(w * s)))


@dataclass
class TransformedSample:
    """One transformed detection sample.

    Attributes:
        image: (H, W, 3) uint8 RGB canvas; H and W are multiples of 32, padding at bottom/right
            with ``PAD_VALUE``.
        boxes: (N, 4) float32 xyxy boxes in pixels of ``image``.
        labels: (N,) int64 class labels.
        scale: (sx, sy) of the map ``output_px = input_px * scale + offset``; sx is negative
            when the sample was flipped horizontally.
        offset: (dx, dy) of the same map; ``input_px = (output_px - offset) / scale``.
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    scale: tuple[float, float]
    offset: tuple[float, float]


class Letterbox(A.DualTransform):
    """Bbox-safe aspect-keeping crop, resize, horizontal flip and padding in one pass.

    The canvas (h, w) is read from the ``canvas_hw`` entry of the data passed to ``Compose``.
    The output is a freshly allocated canvas: the (optionally cropped) image is resized with one
    ``cv2.resize`` straight into its top-left content region (or copied, or flip-copied, when no
    resize is needed), flipped in place, and only the bottom/right padding is filled. The crop
    window keeps the image aspect ratio, covers ``min_crop_area``–100 % of its area and always
    contains every box, so no object is cut.

    Args:
        crop_prob: Probability of cropping before the resize.
        hflip_prob: Probability of a horizontal flip of the content region.
        min_crop_area: Smallest crop area as a fraction of the image area.
        fill: Padding value for every channel.
        p: Probability of applying the transform (keep 1.0).
    """

    def __init__(
        self,
        crop_prob: float = 0.0,
        hflip_prob: float = 0.0,
        min_crop_area: float = 0.5,
        fill: int = PAD_VALUE,
        p: float = 1.0,
    ) -> None:
        super().__init__(p=p)
        self.crop_prob = crop_prob
        self.hflip_prob = hflip_prob
        self.min_crop_area = min_crop_area
        self.pad_value = fill

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        """Draw the crop window and the flip, and compute the content size on the canvas."""
        h, w = params["shape"][:2]
        canvas_hw = tuple(data["canvas_hw"])
        window = (0, 0, w, h)
        if self.crop_prob > 0 and self.py_random.random() < self.crop_prob:
            window = self._random_window(h, w, data.get("bboxes"))
        flip = self.hflip_prob > 0 and self.py_random.random() < self.hflip_prob
        x0, y0, x1, y1 = window
        out_hw = _fit_scale((y1 - y0, x1 - x0), canvas_hw)
        return {"window": window, "out_hw": out_hw, "canvas_hw": canvas_hw, "flip": flip}

    def _random_window(
        self, h: int, w: int, bboxes: np.ndarray | None
    ) -> tuple[int, int, int, int]:
        if bboxes is not None and len(bboxes):
            # Integer pixel span that holds the union of all boxes.
            ux0 = math.floor(float(bboxes[:, 0].min()) * w)
            uy0 = math.floor(float(bboxes[:, 1].min()) * h)
            ux1 = math.ceil(float(bboxes[:, 2].max()) * w)
            uy1 = math.ceil(float(bboxes[:, 3].max()) * h)
        else:
            ux0, uy0, ux1, uy1 = w, h, 0, 0
        need_w, need_h = max(ux1 - ux0, 1), max(uy1 - uy0, 1)
        lo = max(math.sqrt(self.min_crop_area), need_w / w, need_h / h)
        if lo >= 1.0:
            return 0, 0, w, h
        frac = math.sqrt(self.py_random.uniform(lo * lo, 1.0))
        cw = min(w, max(need_w, round(frac * w)))
        ch = min(h, max(need_h, round(frac * h)))
        x0 = self.py_random.randint(max(0, ux1 - cw), min(ux0, w - cw))
        y0 = self.py_random.randint(max(0, uy1 - ch), min(uy0, h - ch))
        return x0, y0, x0 + cw, y0 + ch

    def apply(
        self,
        img: np.ndarray,
        window: tuple[int, int, int, int],
        out_hw: tuple[int, int],
        canvas_hw: tuple[int, int],
        flip: bool,
        **params: Any,
    ) -> np.ndarray:
        """Write the cropped, resized and flipped image into a new padded canvas."""
        x0, y0, x1, y1 = window
        (oh, ow), (ch, cw) = out_hw, canvas_hw
        roi = img[y0:y1, x0:x1]
        canvas = np.empty((ch, cw, *img.shape[2:]), dtype=img.dtype)
        canvas[oh:] = self.pad_value
        canvas[:oh, ow:] = self.pad_value
        content = canvas[:oh, :ow]
        if roi.shape[:2] != out_hw:
            cv2.resize(roi, (ow, oh), dst=content, interpolation=cv2.INTER_LINEAR)
            if flip:
                cv2.flip(content, 1, dst=content)
        elif flip:
            cv2.flip(roi, 1, dst=content)
        else:
            content[...] = roi
        return canvas

    def apply_to_bboxes(
        self,
        bboxes: np.ndarray,
        window: tuple[int, int, int, int],
        out_hw: tuple[int, int],
        canvas_hw: tuple[int, int],
        flip: bool,
        **params: Any,
    ) -> np.ndarray:
        """Map boxes normalised to the input to boxes normalised to the canvas."""
        if not len(bboxes):
            return bboxes
        h, w = params["shape"][:2]
        x0, y0, x1, y1 = window
        (oh, ow), (ch, cw) = out_hw, canvas_hw
        out = bboxes.copy()
        # Normalised to the content region first, then shrunk to the canvas.
        xs = np.clip((bboxes[:, [0, 2]] * w - x0) / (x1 - x0), 0.0, 1.0)
        ys = np.clip((bboxes[:, [1, 3]] * h - y0) / (y1 - y0), 0.0, 1.0)
        if flip:
            xs = 1.0 - xs[:, ::-1]
        out[:, [0, 2]] = xs * (ow / cw)
        out[:, [1, 3]] = ys * (oh / ch)
        return out

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        """Names of the constructor arguments (for repr and serialisation)."""
        return ("crop_prob", "hflip_prob", "min_crop_area", "fill")


_SCRATCH = threading.local()


def _scratch_like(img: np.ndarray) -> np.ndarray:
    """A per-thread buffer shaped like ``img``, reused across calls (fresh pages are costly)."""
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.shape != img.shape or buf.dtype != img.dtype:
        buf = np.empty_like(img)
        _SCRATCH.buf = buf
    return buf


class AffineColorJitter(A.ImageOnlyTransform):
    """Brightness, contrast, saturation and hue jitter as one affine colour map.

    All four adjustments are linear in RGB, so they compose into one 3×4 matrix applied with a
    single ``cv2.transform`` (uint8 in, saturated uint8 out). Contrast pivots on the mean luma of
    the image (estimated on a 1/16 subsample); hue rotates the YIQ chroma plane.

    Args:
        brightness: Multiplicative brightness factor drawn from [1 - b, 1 + b].
        contrast: Contrast factor drawn from [1 - c, 1 + c].
        saturation: Saturation factor drawn from [1 - s, 1 + s].
        hue: Hue rotation drawn from [-hue, hue] turns (0.02 is ±7.2 degrees).
        reuse_output: Write into a per-thread buffer reused by the next call instead of a new
            array. Only safe when the next step consumes the image before that call (as
            ``Letterbox`` does); it avoids faulting in a fresh 6 MB buffer per 1080p sample.
        p: Probability of applying the transform.
    """

    def __init__(
        self,
        brightness: float = 0.25,
        contrast: float = 0.25,
        saturation: float = 0.3,
        hue: float = 0.02,
        reuse_output: bool = False,
        p: float = 0.8,
    ) -> None:
        super().__init__(p=p)
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue
        self.reuse_output = reuse_output

    def get_params(self) -> dict[str, Any]:
        """Draw the jitter factors."""
        r = self.py_random
        return {
            "factors": (
                r.uniform(1 - self.brightness, 1 + self.brightness),
                r.uniform(1 - self.contrast, 1 + self.contrast),
                r.uniform(1 - self.saturation, 1 + self.saturation),
                r.uniform(-self.hue, self.hue) * 2 * math.pi,
            )
        }

    def apply(
        self, img: np.ndarray, factors: tuple[float, float, float, float], **params: Any
    ) -> np.ndarray:
        """Apply the colour matrix in one pass."""
        b, c, s, theta = factors
        cos, sin = math.cos(theta), math.sin(theta)
        chroma = np.array([[1.0, 0.0, 0.0], [0.0, s * cos, -s * sin], [0.0, s * sin, s * cos]])
        linear = _YIQ_TO_RGB @ chroma @ _RGB_TO_YIQ
        pivot = float(img[::16, ::16].reshape(-1, 3).mean(axis=0) @ _LUMA)
        matrix = np.empty((3, 4), dtype=np.float32)
        matrix[:, :3] = b * c * linear
        matrix[:, 3] = b * (1.0 - c) * pivot
        if self.reuse_output:
            return cv2.transform(img, matrix, dst=_scratch_like(img))
        return cv2.transform(img, matrix)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        """Names of the constructor arguments (for repr and serialisation)."""
        return ("brightness", "contrast", "saturation", "hue", "reuse_output")


def _bbox_params(min_size: float) -> A.BboxParams:
    return A.BboxParams(
        format="pascal_voc",
        label_fields=["labels"],
        clip=True,
        filter_invalid_bboxes=True,
        min_width=min_size,
        min_height=min_size,
        # Geometry is exact, so filtering once at the end (postprocess) is enough.
        check_each_transform=False,
    )


def _check_inputs(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray) -> tuple[Any, ...]:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"transform: image must be an (H, W, 3) array, got shape {shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"transform: image must be uint8, got {image.dtype}")
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) if len(boxes) else _no_boxes()
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(boxes) != len(labels):
        raise ValueError(f"transform: {len(boxes)} boxes but {len(labels)} labels")
    if not np.isfinite(boxes).all():
        raise ValueError("transform: boxes contain NaN or infinite values")
    return image, boxes, labels


def _no_boxes() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.float32)


def _run(
    compose: A.Compose,
    letterbox: Letterbox,
    canvas_hw: tuple[int, int],
    image: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
) -> TransformedSample:
    image, boxes, labels = _check_inputs(image, boxes, labels)
    out = compose(image=image, bboxes=boxes, labels=labels, canvas_hw=canvas_hw)
    params = letterbox.params
    x0, y0, x1, y1 = params["window"]
    out_h, out_w = params["out_hw"]
    sx, sy = out_w / (x1 - x0), out_h / (y1 - y0)
    dx, dy = -x0 * sx, -y0 * sy
    if params["flip"]:
        sx, dx = -sx, out_w - dx
    return TransformedSample(
        image=out["image"],
        boxes=np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4),
        labels=np.asarray(out["labels"], dtype=np.int64).reshape(-1),
        scale=(sx, sy),
        offset=(dx, dy),
    )


class TrainTransform:
    """Multi-scale 16:9 training augmentation with letterbox padding.

    Per sample: a canvas (the batch's when given, else drawn from ``sizes``); a bbox-safe crop
    (probability ``crop_prob``, area 50–100 %, image aspect ratio kept, all boxes inside); an
    aspect-preserving resize that fits the canvas; a horizontal flip; colour jitter;
    bottom/right padding to the canvas. Boxes
    are clipped to the image and boxes narrower or shorter than ``min_box_size`` pixels after the
    transforms are removed with their labels.

    Args:
        sizes: Canvas (h, w) pairs, each a multiple of 32.
        hflip_prob: Probability of a horizontal flip.
        photometric_prob: Probability of colour jitter.
        crop_prob: Probability of the bbox-safe crop.
        min_box_size: Minimum output box width and height in pixels.
        seed: Seed of the augmentation stream; ``None`` derives it from the run seed
            (``seed_everything``), the worker and the epoch.
    """

    def __init__(
        self,
        sizes: Sequence[tuple[int, int]] = DEFAULT_TRAIN_SIZES,
        hflip_prob: float = 0.5,
        photometric_prob: float = 0.8,
        crop_prob: float = 0.3,
        min_box_size: float = 2.0,
        seed: int | None = None,
    ) -> None:
        if not len(sizes):
            raise ValueError("TrainTransform: sizes is empty")
        self.sizes = tuple(_check_size(s, "TrainTransform sizes") for s in sizes)
        for name, prob in (
            ("hflip_prob", hflip_prob),
            ("photometric_prob", photometric_prob),
            ("crop_prob", crop_prob),
        ):
            if not 0.0 <= prob <= 1.0:
                raise ValueError(f"TrainTransform: {name} must be in [0, 1], got {prob}")
        if min_box_size < 0:
            raise ValueError(f"TrainTransform: min_box_size must be >= 0, got {min_box_size}")
        for h, w in self.sizes:
            if abs(w / h - 16 / 9) > _MAX_ASPECT_DEVIATION:
                raise ValueError(
                    f"TrainTransform: size {(h, w)} has aspect {w / h:.3f}, not close to 16:9"
                )
        self.seed = seed
        self._stream_seed = StreamSeed(seed)
        self._letterbox = Letterbox(crop_prob=crop_prob, hflip_prob=hflip_prob)
        self._compose = A.Compose(
            [AffineColorJitter(reuse_output=True, p=photometric_prob), self._letterbox],
            bbox_params=_bbox_params(min_box_size),
        )
        self._set_seed(self._stream_seed.initial())

    def _set_seed(self, seed: int | Sequence[int] | None) -> None:
        seq = np.random.SeedSequence(seed)
        self._rng = np.random.default_rng(seq)
        self._py_random = random.Random(int(seq.generate_state(1, dtype=np.uint64)[0]))
        # One shared stream for every step (Compose(seed=...) would give each the same one).
        self._compose.set_random_state(self._rng, self._py_random)

    def __call__(
        self,
        image: np.ndarray,
        boxes: np.ndarray,
        labels: np.ndarray,
        canvas: tuple[int, int] | None = None,
    ) -> TransformedSample:
        """Augment one sample.

        Args:
            image: (H, W, 3) uint8 RGB image.
            boxes: (N, 4) xyxy boxes in pixels of ``image``.
            labels: (N,) integer labels.
            canvas: (h, w) canvas chosen for the whole batch; None draws one from ``sizes``.

        Returns:
            The augmented sample on the canvas.
        """
        entropy = self._stream_seed.update()
        if entropy is not None:
            self._set_seed(entropy)
        if canvas is None:
            canvas = self.sizes[self._py_random.randrange(len(self.sizes))]
        else:
            canvas = _check_size(canvas, "TrainTransform canvas")
        return _run(self._compose, self._letterbox, canvas, image, boxes, labels)


class EvalTransform:
    """Deterministic letterbox: fit inside ``size`` keeping aspect, pad bottom/right.

    A 1920×1080 image with the default size (1088, 1920) is not resized (scale 1) and gets 8
    padded rows. ``scale``/``offset`` of the result map predictions back exactly:
    ``original = (output - offset) / scale``. Boxes are clipped; only degenerate boxes dropped.

    Args:
        size: Canvas (h, w), each a multiple of 32.
    """

    def __init__(self, size: tuple[int, int] = DEFAULT_EVAL_SIZE) -> None:
        self.size = _check_size(size, "EvalTransform size")
        self._letterbox = Letterbox()
        self._compose = A.Compose([self._letterbox], bbox_params=_bbox_params(0.0))

    def __call__(
        self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray
    ) -> TransformedSample:
        """Letterbox one sample.

        Args:
            image: (H, W, 3) uint8 RGB image.
            boxes: (N, 4) xyxy boxes in pixels of ``image``.
            labels: (N,) integer labels.

        Returns:
            The sample on the ``size`` canvas.
        """
        return _run(self._compose, self._letterbox, self.size, image, boxes, labels)
