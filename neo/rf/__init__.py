"""RF signals: SigMF recordings, spectrogram images, annotation boxes and synthetic data."""

from neo.rf.boxes import Box, Geometry, box_to_annotation, chunk_boxes
from neo.rf.dataset_writer import make_spectrograms
from neo.rf.recording import Annotation, Capture, Chunk, Recording, RecordingError
from neo.rf.spectrogram import Spectrogram
from neo.rf.synth import synth_rf

__all__ = [
    "Annotation",
    "Box",
    "Capture",
    "Chunk",
    "Geometry",
    "Recording",
    "RecordingError",
    "Spectrogram",
    "box_to_annotation",
    "chunk_boxes",
    "make_spectrograms",
    "synth_rf",
]
