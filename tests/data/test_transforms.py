import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from neo.data.transforms import (
    DEFAULT_EVAL_SIZE,
    DEFAULT_TRAIN_SIZES,
    PAD_VALUE,
    EvalTransform,
    TrainTransform,
    TransformedSample,
    round_up_to_multiple,
)

SIZES = ((96, 160), (128, 224), (160, 288), (192, 352))
IN_H, IN_W = 180, 320


def rect_image(h, w, box, value=255):
    img = np.zeros((h, w, 3), np.uint8)
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1] = value
    return img


def extent(img, threshold=(255 + PAD_VALUE) / 2):
    """Pixel-edge extent (x0, y0, x1, y1) of the pixels brighter than threshold in every channel."""
    ys, xs = np.nonzero((img > threshold).all(axis=2))
    assert len(xs), "rectangle vanished"
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def mapped(box, sample):
    sx, sy = sample.scale
    dx, dy = sample.offset
    xs = sorted([box[0] * sx + dx, box[2] * sx + dx])
    ys = sorted([box[1] * sy + dy, box[3] * sy + dy])
    return np.array([xs[0], ys[0], xs[1], ys[1]], np.float32)


def random_rect(rng, h=IN_H, w=IN_W):
    bw, bh = int(rng.integers(12, 80)), int(rng.integers(12, 60))
    x0, y0 = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1))
    return (x0, y0, x0 + bw, y0 + bh)


def test_round_up_to_multiple():
    assert round_up_to_multiple(1080) == 1088
    assert round_up_to_multiple(1088) == 1088
    assert round_up_to_multiple(0) == 0
    assert round_up_to_multiple(33, 16) == 48


def test_default_sizes_are_multiples_of_32_and_fit_1080p_with_under_32_padded_rows():
    img = np.zeros((1080, 1920, 3), np.uint8)
    for h, w in (*DEFAULT_TRAIN_SIZES, DEFAULT_EVAL_SIZE):
        assert h % 32 == 0 and w % 32 == 0
        out = EvalTransform((h, w))(img, np.zeros((0, 4)), np.zeros(0))
        content_h = round(1080 * out.scale[1])
        assert round(1920 * out.scale[0]) == w and 0 <= h - content_h < 32
    assert (1088, 1920) in DEFAULT_TRAIN_SIZES


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(hflip_prob=0.0, crop_prob=0.0),
        dict(hflip_prob=1.0, crop_prob=0.0),
        dict(hflip_prob=0.0, crop_prob=1.0),
        dict(hflip_prob=0.5, crop_prob=0.5),
    ],
    ids=["resize_pad", "flip", "crop", "mixed"],
)
def test_box_follows_drawn_rectangle(kwargs):
    rng = np.random.default_rng(0)
    flips = 0
    for seed in range(40):
        box = random_rect(rng)
        img = rect_image(IN_H, IN_W, box)
        t = TrainTransform(SIZES, photometric_prob=0.0, min_box_size=0.0, seed=seed, **kwargs)
        out = t(img, np.array([box], np.float32), np.array([3]))
        assert out.image.shape[:2] in SIZES and out.image.dtype == np.uint8
        assert out.labels.tolist() == [3] and out.labels.dtype == np.int64
        assert out.boxes.shape == (1, 4) and out.boxes.dtype == np.float32
        np.testing.assert_allclose(out.boxes[0], extent(out.image), atol=1.0)
        np.testing.assert_allclose(out.boxes[0], mapped(box, out), atol=1e-3)
        flips += out.scale[0] < 0
    if kwargs["hflip_prob"] == 1.0:
        assert flips == 40
    elif kwargs["hflip_prob"] == 0.5:
        assert 5 < flips < 35
    else:
        assert flips == 0


def test_crop_zooms_in_keeps_all_boxes_and_aspect():
    rng = np.random.default_rng(1)
    zoomed = 0
    for seed in range(40):
        boxes = np.array([random_rect(rng) for _ in range(2)], np.float32)
        img = np.full((IN_H, IN_W, 3), 60, np.uint8)
        t = TrainTransform([(192, 352)], 0.0, 0.0, crop_prob=1.0, min_box_size=0.0, seed=seed)
        out = t(img, boxes, np.array([1, 2]))
        assert out.labels.tolist() == [1, 2]
        for b_in, b_out in zip(boxes, out.boxes):
            np.testing.assert_allclose(b_out, mapped(b_in, out), atol=1e-3)
        content = (out.image != PAD_VALUE).all(axis=2)
        ch, cw = content.any(axis=1).sum(), content.any(axis=0).sum()
        # The crop keeps the image aspect ratio: the content is a letterboxed 16:9 region.
        assert abs(cw - ch * IN_W / IN_H) <= 2.0
        zoomed += out.scale[0] > 352 / IN_W + 1e-6
    assert zoomed > 10


def test_photometric_changes_colours_not_geometry_or_padding():
    rng = np.random.default_rng(2)
    changed = 0
    for seed in range(20):
        box = random_rect(rng)
        img = rect_image(IN_H, IN_W, box, value=200)
        img[..., 0] = np.minimum(img[..., 0], 150)  # coloured, so saturation and hue act
        t = TrainTransform(SIZES, 0.0, photometric_prob=1.0, crop_prob=0.0, seed=seed)
        out = t(img, np.array([box], np.float32), np.array([0]))
        cw, ch = round(IN_W * out.scale[0]), round(IN_H * out.scale[1])
        content = out.image[:ch, :cw]
        assert (out.image[ch:] == PAD_VALUE).all() and (out.image[:, cw:] == PAD_VALUE).all()
        cx, cy = ((out.boxes[0, :2] + out.boxes[0, 2:]) / 2).astype(int)
        inside, outside = content[cy, cx].astype(int), content[0, 0].astype(int)
        if box[0] <= 1 and box[1] <= 1:
            continue
        threshold = (inside.min() + outside.max()) / 2
        ys, xs = np.nonzero((content > threshold).all(axis=2))
        found = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
        np.testing.assert_allclose(out.boxes[0], found, atol=1.0)
        reference = TrainTransform(SIZES, 0.0, 0.0, 0.0, seed=seed)(
            img, np.array([box], np.float32), np.array([0])
        )
        changed += not np.array_equal(reference.image, out.image)
    assert changed >= 15


@pytest.mark.parametrize(
    "in_hw", [(240, 320), (320, 180), (100, 100)], ids=["4:3", "portrait", "1:1"]
)
def test_other_aspects_are_letterboxed_not_stretched(in_hw):
    h, w = in_hw
    img = np.full((h, w, 3), 200, np.uint8)
    box = np.array([[w * 0.25, h * 0.25, w * 0.75, h * 0.5]], np.float32)
    samples = [EvalTransform((128, 224))(img, box, np.array([1]))]
    samples += [TrainTransform(SIZES, seed=s)(img, box, np.array([1])) for s in range(10)]
    for out in samples:
        assert out.image.shape[0] % 32 == 0 and out.image.shape[1] % 32 == 0
        content = (out.image != PAD_VALUE).all(axis=2)
        rows, cols = np.nonzero(content.any(axis=1))[0], np.nonzero(content.any(axis=0))[0]
        assert rows[0] == 0 and cols[0] == 0  # padding only at bottom/right
        ch, cw = rows[-1] + 1, cols[-1] + 1
        assert abs(cw - ch * w / h) <= 1.5
        assert ch == out.image.shape[0] or cw == out.image.shape[1]  # fits the canvas
        assert abs(out.scale[0]) == pytest.approx(out.scale[1], rel=0.02)


def test_eval_native_1080p_is_not_resized_and_padded_8_rows():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    boxes = np.array([[10.5, 20.25, 400.0, 1080.0], [0.0, 0.0, 1920.0, 5.0]], np.float32)
    out = EvalTransform()(img, boxes, np.array([4, 7]))
    assert out.image.shape == (1088, 1920, 3)
    assert out.scale == (1.0, 1.0) and out.offset == (0.0, 0.0)
    assert np.array_equal(out.image[:1080], img)
    assert (out.image[1080:] == PAD_VALUE).all()
    np.testing.assert_array_equal(out.boxes, boxes)
    assert out.labels.tolist() == [4, 7]


@pytest.mark.parametrize("in_hw", [(720, 1280), (480, 640), (300, 200), (1200, 1900)])
def test_eval_scale_offset_invert_exactly(in_hw):
    h, w = in_hw
    rng = np.random.default_rng(4)
    xy0 = rng.uniform(0, [w - 20, h - 20], (8, 2))
    boxes = np.concatenate([xy0, xy0 + rng.uniform(5, 20, (8, 2))], 1).astype(np.float32)
    out = EvalTransform((1088, 1920))(np.zeros((h, w, 3), np.uint8), boxes, np.arange(8))
    assert out.image.shape == (1088, 1920, 3)
    scale, offset = np.array(out.scale * 2), np.array(out.offset * 2)
    np.testing.assert_allclose((out.boxes - offset) / scale, boxes, atol=1e-3)
    np.testing.assert_allclose(out.boxes, boxes * scale + offset, atol=1e-3)


def test_train_scale_offset_invert_including_flip():
    rng = np.random.default_rng(5)
    boxes = np.array([random_rect(rng) for _ in range(5)], np.float32)
    t = TrainTransform(SIZES, hflip_prob=0.5, crop_prob=0.5, min_box_size=0.0, seed=0)
    for _ in range(20):
        out = t(np.zeros((IN_H, IN_W, 3), np.uint8), boxes, np.arange(5))
        back = (out.boxes - np.array(out.offset * 2)) / np.array(out.scale * 2)
        back = np.concatenate(
            [np.minimum(back[:, :2], back[:, 2:]), np.maximum(back[:, :2], back[:, 2:])], 1
        )
        np.testing.assert_allclose(back, boxes, atol=1e-3)


@pytest.mark.parametrize(
    "make", [lambda: TrainTransform(SIZES, seed=0), lambda: EvalTransform((96, 160))]
)
def test_zero_boxes(make):
    out = make()(
        np.zeros((IN_H, IN_W, 3), np.uint8), np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    )
    assert isinstance(out, TransformedSample)
    assert out.boxes.shape == (0, 4) and out.boxes.dtype == np.float32
    assert out.labels.shape == (0,) and out.labels.dtype == np.int64
    assert out.image.shape[:2] in (*SIZES, (96, 160))


def test_boxes_are_clipped_to_the_image():
    boxes = np.array([[-30, -10, 50, 60], [300, 150, 400, 250], [-50, -50, -10, -10]], np.float32)
    out = EvalTransform((192, 352))(np.zeros((IN_H, IN_W, 3), np.uint8), boxes, np.array([1, 2, 3]))
    scale = np.array(out.scale * 2)
    assert out.labels.tolist() == [1, 2]  # the box fully outside the image is dropped
    expected = np.array([[0, 0, 50, 60], [300, 150, 320, 180]]) * scale
    np.testing.assert_allclose(out.boxes, expected, atol=1e-3)


def test_tiny_boxes_removed_with_their_labels_after_scaling():
    boxes = np.array(
        [[10, 10, 13, 40], [50, 50, 100, 100], [200, 20, 260, 23], [5, 5, 5.5, 5.5]], np.float32
    )
    img = np.zeros((192, 352, 3), np.uint8)
    same = TrainTransform([(192, 352)], 0.0, 0.0, 0.0, min_box_size=2.0, seed=0)(
        img, boxes, np.array([1, 2, 3, 4])
    )
    assert same.labels.tolist() == [1, 2, 3]
    half = TrainTransform([(96, 160)], 0.0, 0.0, 0.0, min_box_size=2.0, seed=0)(
        img, boxes, np.array([1, 2, 3, 4])
    )
    assert half.scale[0] < 0.5
    assert half.labels.tolist() == [2]  # 3 px wide/high boxes shrink below 2 px
    assert len(half.boxes) == 1


@pytest.mark.parametrize(
    ("make", "bad"),
    [
        (lambda: TrainTransform(sizes=[(1080, 1920)]), "1080"),
        (lambda: TrainTransform(sizes=[(1088, 1900)]), "1900"),
        (lambda: TrainTransform(sizes=[(1088, 1088)]), "16:9"),
        (lambda: TrainTransform(sizes=[]), "empty"),
        (lambda: TrainTransform(hflip_prob=1.5), "hflip_prob"),
        (lambda: EvalTransform((1080, 1920)), "1080"),
    ],
)
def test_bad_sizes_rejected(make, bad):
    with pytest.raises(ValueError, match=bad):
        make()


def test_bad_inputs_rejected():
    t = EvalTransform((96, 160))
    with pytest.raises(ValueError, match="uint8"):
        t(np.zeros((10, 10, 3), np.float32), np.zeros((0, 4)), np.zeros(0))
    with pytest.raises(ValueError, match="H, W, 3"):
        t(np.zeros((10, 10), np.uint8), np.zeros((0, 4)), np.zeros(0))
    with pytest.raises(ValueError, match="labels"):
        t(np.zeros((10, 10, 3), np.uint8), np.array([[1, 1, 5, 5]]), np.zeros(0))


def _run_many(t, n=12):
    rng = np.random.default_rng(6)
    img = rng.integers(0, 256, (IN_H, IN_W, 3), dtype=np.uint8)
    boxes = np.array([[20, 30, 120, 90], [200, 100, 300, 170]], np.float32)
    return [t(img, boxes, np.array([0, 1])) for _ in range(n)]


def test_same_seed_reproduces_different_seeds_differ():
    a, b, c = (_run_many(TrainTransform(SIZES, seed=s)) for s in (7, 7, 8))
    for x, y in zip(a, b):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.boxes, y.boxes)
        assert x.scale == y.scale
    assert any(not np.array_equal(x.image, z.image) for x, z in zip(a, c))


def test_steps_draw_from_one_stream_not_identical_copies():
    # Compose(seed=s) gives every step a copy of one stream; here they share a single stream.
    t = TrainTransform(SIZES, hflip_prob=0.5, photometric_prob=0.5, crop_prob=0.0, seed=3)
    jitter = t._compose.transforms[0]
    img = np.zeros((IN_H, IN_W, 3), np.uint8)
    combos = set()
    for _ in range(40):
        out = t(img, np.zeros((0, 4)), np.zeros(0))
        combos.add((out.scale[0] < 0, bool(jitter.params)))
    assert combos == {(False, False), (False, True), (True, False), (True, True)}


def test_transforms_pickle_and_keep_their_stream():
    t = TrainTransform(SIZES, seed=11)
    clone = pickle.loads(pickle.dumps(t))
    for x, y in zip(_run_many(t, 4), _run_many(clone, 4)):
        assert np.array_equal(x.image, y.image)


class _Repeat(Dataset):
    def __init__(self, transform, n):
        self.transform, self.n = transform, n
        rng = np.random.default_rng(8)
        self.img = rng.integers(0, 256, (IN_H, IN_W, 3), dtype=np.uint8)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        out = self.transform(self.img, np.array([[20, 30, 120, 90]], np.float32), np.array([0]))
        info = torch.utils.data.get_worker_info()
        return info.id, out.scale[0], out.offset[1], int(out.image.astype(np.int64).sum())


def _worker_streams(seed):
    loader = DataLoader(
        _Repeat(TrainTransform(SIZES, seed=seed), 16),
        batch_size=None,
        num_workers=2,
        generator=torch.Generator().manual_seed(0),
        multiprocessing_context="fork",
    )
    streams = {0: [], 1: []}
    for worker, *result in loader:
        streams[int(worker)].append(tuple(float(v) for v in result))
    return streams


def test_dataloader_workers_get_different_streams_and_reproduce():
    first = _worker_streams(seed=5)
    assert len(first[0]) == len(first[1]) == 8
    assert first[0] != first[1]
    assert _worker_streams(seed=5) == first
