import numpy as np
import pytest

from neo.rf.recording import Recording, RecordingError, chunk_spans

RE, IM = 0.5, -0.25  # the sample every fixed-point case below encodes

DATATYPES = [
    ("cf32_le", np.array([RE, IM], dtype="<f4")),
    ("cf32_be", np.array([RE, IM], dtype=">f4")),
    ("cf64_le", np.array([RE, IM], dtype="<f8")),
    ("cf64_be", np.array([RE, IM], dtype=">f8")),
    ("ci32_le", np.array([RE * 2**31, IM * 2**31], dtype="<i4")),
    ("ci16_le", np.array([RE * 2**15, IM * 2**15], dtype="<i2")),
    ("ci16_be", np.array([RE * 2**15, IM * 2**15], dtype=">i2")),
    ("ci8", np.array([RE * 2**7, IM * 2**7], dtype="i1")),
    ("cu8", np.array([(RE + 1) * 2**7, (IM + 1) * 2**7], dtype="u1")),
    ("cu16_le", np.array([(RE + 1) * 2**15, (IM + 1) * 2**15], dtype="<u2")),
    ("cu32_be", np.array([(RE + 1) * 2**31, (IM + 1) * 2**31], dtype=">u4")),
]


@pytest.mark.parametrize(("datatype", "one_sample"), DATATYPES)
def test_complex_datatypes_scale_to_unit_range(make_recording, datatype, one_sample):
    path = make_recording(data=np.tile(one_sample, 50), datatype=datatype)
    rec = Recording(path)
    assert rec.num_samples == 50
    samples = rec.read(10, 5)
    assert samples.dtype == np.complex64
    np.testing.assert_allclose(samples, np.full(5, RE + 1j * IM), atol=1e-6)


@pytest.mark.parametrize(
    ("datatype", "value"),
    [
        ("rf32_le", np.array([RE], "<f4")),
        ("ri16_be", np.array([RE * 2**15], ">i2")),
        ("ru8", np.array([(RE + 1) * 2**7], "u1")),
        ("rf64_le", np.array([RE], "<f8")),
    ],
)
def test_real_datatypes_become_complex(make_recording, datatype, value):
    rec = Recording(make_recording(data=np.tile(value, 40), datatype=datatype))
    assert not rec.is_complex
    np.testing.assert_allclose(rec.read(0, 40), np.full(40, RE + 0j), atol=1e-6)


def test_missing_data_file(make_recording):
    path = make_recording(write_data=False)
    with pytest.raises(RecordingError, match=r"data file rec\.sigmf-data is missing"):
        Recording(path)


def test_opens_by_data_or_base_name(make_recording):
    meta = make_recording()
    assert Recording(meta.with_suffix(".sigmf-data")).meta_path == meta
    assert Recording(meta.with_suffix("")).meta_path == meta


def test_missing_meta_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing\.sigmf-meta"):
        Recording(tmp_path / "nothing.sigmf-meta")


def test_truncated_partial_sample(make_recording):
    path = make_recording(data=np.zeros(100, "<c8").tobytes()[:-3])
    with pytest.raises(RecordingError, match=r"rec\.sigmf-meta: truncated data file"):
        Recording(path)


def test_truncated_shorter_than_annotations(make_recording):
    ann = [{"core:sample_start": 90, "core:sample_count": 20, "core:label": "x"}]
    path = make_recording(data=np.zeros(100, "<c8"), annotations=ann)
    with pytest.raises(RecordingError, match=r"truncated.*ends at sample 110.*100 samples"):
        Recording(path)


def test_truncated_shorter_than_captures(make_recording):
    caps = [{"core:sample_start": 0}, {"core:sample_start": 500, "core:frequency": 1.0}]
    path = make_recording(data=np.zeros(100, "<c8"), captures=caps)
    with pytest.raises(RecordingError, match=r"truncated.*capture starts at sample 500"):
        Recording(path)


@pytest.mark.parametrize("datatype", ["cf24_le", "cf32_xe", "complex", None, "qf32_le"])
def test_unsupported_datatype(make_recording, datatype):
    with pytest.raises(RecordingError, match=r"rec\.sigmf-meta: unsupported datatype"):
        Recording(make_recording(datatype=datatype))


def test_multichannel_rejected(make_recording):
    with pytest.raises(RecordingError, match=r"2 channels"):
        Recording(make_recording(**{"core:num_channels": 2}))


@pytest.mark.parametrize("rate", [None, 0, -5.0, "fast"])
def test_missing_or_bad_sample_rate(make_recording, rate):
    with pytest.raises(RecordingError, match=r"meta: missing or invalid core:sample_rate"):
        Recording(make_recording(sample_rate=rate))


def test_shorter_than_one_chunk(make_recording):
    rec = Recording(make_recording(data=np.zeros(150, "<c8"), sample_rate=1000.0))
    with pytest.raises(RecordingError, match=r"meta: recording is shorter than one chunk"):
        rec.chunk_spans(0.2)
    with pytest.raises(RecordingError):
        list(rec.chunks(0.2))


def test_annotation_outside_recording_skipped_and_counted(make_recording):
    anns = [
        {
            "core:sample_start": 0,
            "core:sample_count": 10,
            "core:freq_lower_edge": 900.0,
            "core:freq_upper_edge": 950.0,
            "core:label": "out_of_band",
        },
        {"core:sample_start": 5, "core:sample_count": 0, "core:label": "empty"},
        {
            "core:sample_start": 5,
            "core:sample_count": 10,
            "core:freq_lower_edge": 10.0,
            "core:label": "one_edge",
        },
        {
            "core:sample_start": 20,
            "core:sample_count": 10,
            "core:freq_lower_edge": -100.0,
            "core:freq_upper_edge": 100.0,
            "core:label": "good",
        },
    ]
    with pytest.warns(UserWarning, match=r"skipped 3 annotation"):
        rec = Recording(make_recording(annotations=anns))
    assert rec.skipped_annotations == 3
    assert [a.label for a in rec.annotations] == ["good"]


def test_annotation_without_edges_is_full_band(make_recording):
    anns = [{"core:sample_start": 100, "core:label": "wide"}]
    rec = Recording(make_recording(annotations=anns))
    (ann,) = rec.annotations
    assert ann.freq_lower_edge is None and ann.freq_upper_edge is None
    assert ann.sample_count == 900  # no sample_count: to the end


def test_offset_and_captures(make_recording):
    caps = [
        {"core:sample_start": 1000, "core:frequency": 5e6},
        {"core:sample_start": 1500, "core:frequency": 6e6},
    ]
    anns = [{"core:sample_start": 1600, "core:sample_count": 10, "core:label": "a"}]
    rec = Recording(make_recording(captures=caps, annotations=anns, **{"core:offset": 1000}))
    assert rec.annotations[0].sample_start == 600
    assert rec.centre_frequency(0) == 5e6
    assert rec.centre_frequency(499) == 5e6
    assert rec.centre_frequency(500) == 6e6


def test_chunks_with_overlap(make_recording):
    data = (np.arange(1000) + 0j).astype("<c8")
    rec = Recording(make_recording(data=data, sample_rate=1000.0))
    spans = rec.chunk_spans(0.2, overlap=0.5)
    assert spans == [(s, 200) for s in range(0, 801, 100)]
    chunks = list(rec.chunks(0.3))
    assert [(c.index, c.sample_start, c.sample_count) for c in chunks] == [
        (0, 0, 300),
        (1, 300, 300),
        (2, 600, 300),
    ]
    np.testing.assert_array_equal(chunks[1].samples.real, np.arange(300, 600))


def test_chunk_spans_validation():
    assert chunk_spans(10, 4, 0.0) == [(0, 4), (4, 4)]
    with pytest.raises(ValueError):
        chunk_spans(10, 4, 1.0)
