"""RF signals: SigMF recordings, spectrogram images, annotation boxes and synthetic data."""

from neo.utils.lazy import lazy_exports

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
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(["Box", "Geometry", "box_to_annotation", "chunk_boxes"], "neo.rf.boxes"),
        **dict.fromkeys(
            ["Annotation", "Capture", "Chunk", "Recording", "RecordingError"], "neo.rf.recording"
        ),
        "Spectrogram": "neo.rf.spectrogram",
        "make_spectrograms": "neo.rf.dataset_writer",
        "synth_rf": "neo.rf.synth",
    },
)
