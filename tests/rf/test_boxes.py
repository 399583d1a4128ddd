import pytest

from neo.rf.boxes import Box, Geometry, annotation_box, box_to_annotation, chunk_boxes
from neo.rf.recording import Annotation

FC = 2.4e9
# fs 1000, nfft 64, hop 32, chunk 640 -> 19 frames; 38 x 32 image -> 2 px/frame, 0.5 px/bin
GEOM = Geometry(sample_rate=1000.0, nfft=64, hop=32, chunk_samples=640, width=38, height=32)


def ann(start, count, lo=None, hi=None, label="sig"):
    return Annotation(
        start, count, None if lo is None else FC + lo, None if hi is None else FC + hi, label
    )


def test_geometry():
    assert GEOM.num_frames == 19
    assert GEOM.x_scale == pytest.approx(2.0)
    assert GEOM.y_scale == pytest.approx(0.5)


def test_box_matches_hand_computation():
    box = annotation_box(ann(100, 200, 100.0, 250.0), FC, 0, GEOM)
    # centred frames: x = (s - (nfft - hop)/2)/hop * 2; y = (fs/2 - f)/fs * nfft * 0.5
    assert box.x_min == pytest.approx((100 - 16) / 32 * 2)  # 5.25
    assert box.x_max == pytest.approx((300 - 16) / 32 * 2)  # 17.75
    assert box.y_min == pytest.approx((500 - 250) / 1000 * 64 * 0.5)  # 8.0
    assert box.y_max == pytest.approx((500 - 100) / 1000 * 64 * 0.5)  # 12.8


def test_chunk_offset_and_clipping_at_both_edges():
    # chunk 1 starts at 640; annotation spans 600..1400 -> clipped to the whole chunk width
    boxes, dropped = chunk_boxes([ann(600, 800, -600.0, -300.0)], lambda s: FC, 640, GEOM)
    assert dropped == 0
    (box,) = boxes
    assert (box.x_min, box.x_max) == (0.0, 38.0)
    # f_lo -600 is below -fs/2: clipped to the bottom row
    assert box.y_min == pytest.approx((500 + 300) / 1000 * 32)  # 25.6
    assert box.y_max == 32.0


def test_annotations_outside_chunk_are_not_counted():
    boxes, dropped = chunk_boxes([ann(0, 100), ann(840, 100)], lambda s: FC, 200, GEOM)
    assert boxes == [] and dropped == 0


def test_small_boxes_dropped_and_counted():
    anns = [ann(630, 50, 0.0, 100.0), ann(0, 300, 0.0, 1.0), ann(0, 300, 0.0, 200.0)]
    boxes, dropped = chunk_boxes(anns, lambda s: FC, 0, GEOM, min_size_px=2.0)
    # first: 10 samples inside the chunk -> 0.625 px wide; second: 1 Hz tall -> 0.032 px
    assert dropped == 2
    assert len(boxes) == 1


def test_full_band_without_edges():
    (box,), _ = chunk_boxes([ann(64, 64)], lambda s: FC, 0, GEOM)
    assert (box.y_min, box.y_max) == (0.0, 32.0)
    assert box.x_min == pytest.approx(3.0) and box.x_max == pytest.approx(7.0)


def test_capture_centre_used_per_annotation():
    centre = {0: FC, 320: FC + 100.0}
    (a, b), _ = chunk_boxes(
        [ann(0, 100, 0.0, 100.0), ann(400, 100, 0.0, 100.0)],
        lambda s: centre[0] if s < 320 else centre[320],
        0,
        GEOM,
    )
    assert a.y_max == pytest.approx(16.0)  # 0 Hz offset -> middle
    assert b.y_min == pytest.approx(16.0)  # edge at the new centre frequency + 100 - 100 = 0 Hz


def test_round_trip_box_to_annotation():
    original = ann(128, 256, -200.0, 150.0, label="psk")
    box = annotation_box(original, FC, 64, GEOM)
    back = box_to_annotation(box, 64, FC, GEOM, sample_offset=1000)
    assert back["core:sample_start"] == 1128
    assert back["core:sample_count"] == 256
    assert back["core:freq_lower_edge"] == pytest.approx(FC - 200.0)
    assert back["core:freq_upper_edge"] == pytest.approx(FC + 150.0)
    assert back["core:label"] == "psk"


def test_box_json_format():
    assert Box("a", 1.234, 2, 3, 4.5678).as_json() == {
        "label": "a",
        "x_min": 1.23,
        "y_min": 2,
        "x_max": 3,
        "y_max": 4.57,
    }


def test_geometry_rejects_chunk_shorter_than_fft():
    with pytest.raises(ValueError, match=r"shorter than nfft"):
        Geometry(1000.0, 64, 32, 50, 10, 10)
