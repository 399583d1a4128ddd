"""Uniform slicing with the ``sahi`` package around a Remix detector: the baseline for Remix.

SAHI cuts a frame into a regular grid of overlapping slices, runs the detector on every slice
(and, by default, once on the whole frame), and merges everything. :class:`SahiDetectionModel`
is any :class:`~neo.remix.detector.Detector` as a SAHI detection model: each slice is letterboxed
to the detector's input and the slices of one SAHI batch run as one batch.
:func:`sliced_detections` runs ``sahi.predict.get_sliced_prediction`` on a frame and returns
the detections in frame pixels, in the same form Remix returns them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sahi.models.base import DetectionModel
from sahi.predict import get_sliced_prediction
from sahi.prediction import ObjectPrediction
from sahi.utils.compatibility import fix_full_shape_list, fix_shift_amount_list

from neo.remix.detector import Detections, Detector, empty_detections, fit_to_input


class SahiDetectionModel(DetectionModel):
    """A Remix detector as a SAHI detection model.

    Args:
        detector: the detector; labels become SAHI category ids, named by their number.
        confidence_threshold: detections below this score are dropped.
    """

    def __init__(self, detector: Detector, confidence_threshold: float = 0.05) -> None:
        super().__init__(model=detector, device="cpu", confidence_threshold=confidence_threshold)

    def load_model(self) -> None:  # noqa: D102
        raise ValueError("SahiDetectionModel wraps a detector object; pass it as `detector`")

    def set_model(self, model: Any, **kwargs: Any) -> None:  # noqa: D102
        self.model = model

    def perform_batch_inference(self, images: list[np.ndarray]) -> None:
        """Runs the detector on the images (RGB, any size) as one batch, boxes in image pixels."""
        canvases, scales = zip(*(fit_to_input(image, self.model.input_size) for image in images))
        results = self.model(np.stack(canvases))
        self._original_predictions = [
            (boxes / scale, scores, labels)
            for (boxes, scores, labels), scale in zip(results, scales)
        ]
        self._original_shapes = [image.shape for image in images]

    def perform_inference(self, image: np.ndarray) -> None:
        """Runs the detector on one image (RGB, any size)."""
        self.perform_batch_inference([image])

    def _create_object_prediction_list_from_original_predictions(
        self,
        shift_amount_list: list[list[int | float]] | None = None,
        full_shape_list: list[list[int | float]] | None = None,
    ) -> None:
        shifts = fix_shift_amount_list(shift_amount_list or [[0, 0]])
        full_shapes = fix_full_shape_list(full_shape_list)
        per_image = []
        for index, (boxes, scores, labels) in enumerate(self._original_predictions):
            height, width = self._original_shapes[index][:2]
            full_shape = list(full_shapes[index]) if full_shapes else [height, width]
            clipped = np.clip(boxes, 0, [width, height, width, height])
            predictions = []
            for box, score, label in zip(clipped.tolist(), scores.tolist(), labels.tolist()):
                if score < self.confidence_threshold or box[2] <= box[0] or box[3] <= box[1]:
                    continue
                predictions.append(
                    ObjectPrediction(
                        bbox=box,
                        category_id=int(label),
                        category_name=str(int(label)),
                        score=float(score),
                        shift_amount=[int(v) for v in shifts[index]],
                        full_shape=[int(v) for v in full_shape],
                    )
                )
            per_image.append(predictions)
        self._object_prediction_list_per_image = per_image


def sliced_detections(
    model: SahiDetectionModel,
    frame: np.ndarray,
    slice_size: tuple[int, int],
    overlap: float = 0.2,
    batch_size: int = 1,
    perform_standard_pred: bool = True,
) -> Detections:
    """SAHI's sliced prediction on one frame, as Remix detections in frame pixels.

    Args:
        model: the detector as a SAHI model.
        frame: uint8 RGB (H, W, 3).
        slice_size: ``(width, height)`` of the slices.
        overlap: overlap ratio of neighbouring slices, in both directions.
        batch_size: slices per detector call.
        perform_standard_pred: also run the detector on the whole frame (SAHI's default).

    Returns:
        boxes (N, 4) xyxy, scores (N,) and labels (N,) after SAHI's merging.
    """
    result = get_sliced_prediction(
        frame,
        model,
        slice_height=int(slice_size[1]),
        slice_width=int(slice_size[0]),
        overlap_height_ratio=overlap,
        overlap_width_ratio=overlap,
        perform_standard_pred=perform_standard_pred,
        batch_size=batch_size,
        verbose=0,
    )
    predictions = result.object_prediction_list
    if not predictions:
        return empty_detections()
    return (
        np.array([p.bbox.to_xyxy() for p in predictions], np.float32),
        np.array([p.score.value for p in predictions], np.float32),
        np.array([p.category.id for p in predictions], np.int64),
    )
