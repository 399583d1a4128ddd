"""ReID datasets (LRU cache, workers, frame crops) and the ReID transforms."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from neo.data.problems import DatasetError
from neo.data.reid.dataset import CroppedBBoxDataset, FrameCropDataset
from neo.data.reid.records import BoxRecord
from neo.data.reid.transforms import eval_transform, train_transform


def _write_png(path: Path, image_rgb: np.ndarray) -> str:
    assert cv2.imwrite(str(path), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    return str(path)


@pytest.fixture
def crops(tmp_path: Path) -> tuple[list[str], list[int], list[np.ndarray]]:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20 + i, 10 + i, 3), dtype=np.uint8) for i in range(6)]
    paths = [_write_png(tmp_path / f"crop{i}.png", image) for i, image in enumerate(images)]
    return paths, [0, 0, 1, 1, 2, -1], images


def test_items_are_chw_uint8_rgb_and_equal_with_every_cache_mode(crops):
    paths, labels, images = crops
    modes = [
        {"use_cache": False},
        {"use_cache": True},
        {"use_cache": True, "cache_decoded": True},
    ]
    for mode in modes:
        dataset = CroppedBBoxDataset(paths, labels, **mode)
        for _ in range(2):  # second pass is served by the cache
            for i, expected in enumerate(images):
                image, label = dataset[i]
                assert image.dtype == torch.uint8 and label == labels[i]
                assert torch.equal(image, torch.from_numpy(expected).permute(2, 0, 1))


def test_cached_decoded_array_is_not_handed_out(crops):
    paths, labels, images = crops
    dataset = CroppedBBoxDataset(paths, labels, cache_decoded=True)
    dataset[0][0].zero_()
    assert torch.equal(dataset[0][0], torch.from_numpy(images[0]).permute(2, 0, 1))


def test_cache_counts_hits_and_misses_and_evicts_least_recently_used(crops):
    paths, labels, _ = crops
    dataset = CroppedBBoxDataset(paths, labels, cache_size=2)
    dataset[0], dataset[1], dataset[0]  # 0 is now the most recently used
    assert dataset.cache_info() == {"hits": 1, "misses": 2, "size": 2}
    dataset[2]  # evicts 1, the least recently used
    assert list(dataset._cache) == [0, 2]
    dataset[0]
    dataset[1]
    assert dataset.cache_info() == {"hits": 2, "misses": 4, "size": 2}
    for i in range(6):
        dataset[i]
    assert dataset.cache_info()["size"] == 2


def test_cache_off_counts_nothing(crops):
    paths, labels, _ = crops
    dataset = CroppedBBoxDataset(paths, labels, use_cache=False)
    dataset[0], dataset[0]
    assert dataset.cache_info() == {"hits": 0, "misses": 0, "size": 0}


def test_bad_arguments_and_files(crops, tmp_path):
    paths, labels, _ = crops
    with pytest.raises(ValueError, match="cache_size must be > 0"):
        CroppedBBoxDataset(paths, labels, cache_size=0)
    CroppedBBoxDataset(paths, labels, use_cache=False, cache_size=0)  # no cache, no check
    with pytest.raises(ValueError, match="6 image paths but 5 labels"):
        CroppedBBoxDataset(paths, labels[:5])
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    missing = tmp_path / "missing.jpg"
    for use_cache in (True, False):
        dataset = CroppedBBoxDataset([bad, missing], [0, 1], use_cache=use_cache)
        with pytest.raises(DatasetError, match=r"bad\.jpg: cannot decode"):
            dataset[0]
        with pytest.raises(DatasetError, match=r"missing\.jpg: image file not found"):
            dataset[1]
    assert dataset.cache_info()["size"] == 0


def test_a_new_process_starts_with_an_empty_cache(crops, monkeypatch):
    paths, labels, _ = crops
    dataset = CroppedBBoxDataset(paths, labels)
    dataset[0], dataset[0]
    assert dataset.cache_info() == {"hits": 1, "misses": 1, "size": 1}
    monkeypatch.setattr(os, "getpid", lambda: -5)
    dataset[0]
    assert dataset.cache_info() == {"hits": 0, "misses": 1, "size": 1}


class _ReportingDataset(CroppedBBoxDataset):
    """Adds the serving process and its cache misses so far to every item."""

    def __getitem__(self, index):
        image, label = super().__getitem__(index)
        return image, label, os.getpid(), self.cache_info()["misses"]


def test_data_loader_workers_each_have_their_own_cache(crops):
    paths, labels, _ = crops
    dataset = _ReportingDataset(paths, labels, transform=eval_transform(32, 16))
    for i in range(len(dataset)):  # the main process's cache is full before the workers fork
        dataset[i]
    assert dataset.cache_info()["size"] == 6
    reference = [dataset[i][0] for i in range(len(dataset))]
    loader = DataLoader(dataset, batch_size=1, num_workers=2, persistent_workers=True)
    epochs = [list(loader) for _ in range(2)]
    for epoch in epochs:
        assert all(torch.equal(item[0][0], ref) for item, ref in zip(epoch, reference))
    pids = {int(item[2]) for item in epochs[0]}
    assert len(pids) == 2 and os.getpid() not in pids
    first_misses = [int(item[3]) for item in epochs[0]]
    assert first_misses == [1, 1, 2, 2, 3, 3]  # each worker starts empty, serves alternate items
    assert [int(item[3]) for item in epochs[1]] == [3] * 6  # same items again: all hits


@pytest.fixture
def frame(tmp_path: Path) -> tuple[str, np.ndarray]:
    image = np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    return _write_png(tmp_path / "frame.png", image), image


def test_frame_crops_equal_numpy_crops_clipped_to_the_frame(frame):
    path, image = frame
    records = [
        BoxRecord(path, x=5, y=7, w=10, h=20, label=3),
        BoxRecord(path, x=-4, y=30, w=10, h=20, label=-1),  # clipped left and bottom
        BoxRecord(path, x=55, y=-2, w=10, h=5, label=1),  # clipped right and top
    ]
    dataset = FrameCropDataset(records)
    expected = [image[7:27, 5:15], image[30:40, 0:6], image[0:3, 55:60]]
    assert dataset.labels == [3, -1, 1] and len(dataset) == 3
    for i, crop in enumerate(expected):
        output, label = dataset[i]
        assert label == records[i].label
        assert torch.equal(output, torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1))


def test_frame_crop_outside_the_frame_or_missing_frame_is_an_error(frame, tmp_path):
    path, _ = frame
    outside = BoxRecord(path, x=70, y=0, w=10, h=10, row=4)
    missing = BoxRecord(str(tmp_path / "nope.jpg"), x=0, y=0, w=10, h=10)
    dataset = FrameCropDataset([outside, missing])
    with pytest.raises(DatasetError, match=r"frame\.png: .*CSV row 4.*outside the 60x40 frame"):
        dataset[0]
    with pytest.raises(DatasetError, match=r"nope\.jpg: image file not found"):
        dataset[1]


def test_frame_crops_and_cropped_files_agree_under_one_transform(frame, tmp_path):
    path, image = frame
    record = BoxRecord(path, x=5, y=7, w=10, h=20, label=2)
    crop_path = _write_png(tmp_path / "crop.png", np.ascontiguousarray(image[7:27, 5:15]))
    transform = eval_transform(16, 8)
    from_frame = FrameCropDataset([record], transform=transform)[0]
    from_crop = CroppedBBoxDataset([crop_path], [2], transform=transform)[0]
    assert from_frame[0].shape == (3, 16, 8) and from_frame[1] == from_crop[1] == 2
    assert torch.equal(from_frame[0], from_crop[0])


def test_eval_transform_is_deterministic_and_train_transform_augments():
    image = np.random.default_rng(2).integers(0, 256, (90, 40, 3), dtype=np.uint8)
    evaluate = eval_transform(64, 32)
    first = evaluate(image=image)["image"]
    assert first.dtype == torch.uint8 and first.shape == (3, 64, 32)
    assert all(torch.equal(first, evaluate(image=image)["image"]) for _ in range(3))

    train = train_transform(64, 32, seed=7)
    outputs = [train(image=image)["image"] for _ in range(6)]
    assert all(o.dtype == torch.uint8 and o.shape == (3, 64, 32) for o in outputs)
    assert sum(not torch.equal(o, first) for o in outputs) >= 5
    assert len({o.numpy().tobytes() for o in outputs}) == 6
    again = train_transform(64, 32, seed=7)
    assert all(torch.equal(o, again(image=image)["image"]) for o in outputs)  # seeded: repeats


def test_random_erasing_fills_with_the_imagenet_mean():
    transform = train_transform(64, 32, flip_prob=0.0, pad=0, erasing_prob=1.0, seed=0)
    output = transform(image=np.zeros((64, 32, 3), dtype=np.uint8))["image"]
    erased = output.sum(0) > 0
    area = erased.float().mean().item()
    assert 0.02 <= area <= 0.4
    mean = torch.tensor([124, 116, 104], dtype=torch.uint8)
    assert (output[:, erased] == mean[:, None]).all()


def test_train_transform_rejects_bad_arguments():
    with pytest.raises(ValueError, match="erasing_prob"):
        train_transform(erasing_prob=1.5)
    with pytest.raises(ValueError, match="pad"):
        train_transform(pad=-1)


def test_train_transform_draws_differently_in_each_worker(crops):
    paths, _, _ = crops
    dataset = CroppedBBoxDataset([paths[0]] * 2, [0, 0], transform=train_transform(32, 16, seed=3))
    # item 0 is the first draw of worker 0, item 1 the first of worker 1
    first, second = (image for image, _ in DataLoader(dataset, batch_size=1, num_workers=2))
    assert not torch.equal(first, second)
