import contextlib
import io
import json
import multiprocessing
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from neo.data.problems import DatasetError
from neo.data.synth import render_image, synth, synthesize_coco

SMALL = {"num_train": 3, "num_val": 2, "height": 144, "width": 256}


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_deterministic(tmp_path: Path) -> None:
    a = synthesize_coco(tmp_path / "a", seed=4, **SMALL)
    b = synthesize_coco(tmp_path / "b", seed=4, **SMALL)
    c = synthesize_coco(tmp_path / "c", seed=5, **SMALL)
    files_a, files_b = _files(a), _files(b)
    assert "train/000003.jpg" in files_a and "annotations/instances_val.json" in files_a
    assert files_a == files_b
    assert files_a["train/000001.jpg"] != _files(c)["train/000001.jpg"]
    # an image does not depend on how many others are generated
    d = synthesize_coco(tmp_path / "d", seed=4, **{**SMALL, "num_train": 1})
    assert (d / "train/000001.jpg").read_bytes() == files_a["train/000001.jpg"]


def test_coco_json_is_valid(tmp_path: Path) -> None:
    out = synthesize_coco(tmp_path / "ds", num_train=4, num_val=2, height=270, width=480)
    for split, count in (("train", 4), ("val", 2)):
        path = out / "annotations" / f"instances_{split}.json"
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(path))
        data = json.loads(path.read_text())
        assert [c["id"] for c in data["categories"]] == [1, 3, 7]
        assert [c["name"] for c in data["categories"]] == ["disc", "box", "triangle"]
        assert len(coco.getImgIds()) == count
        ann_ids = [a["id"] for a in data["annotations"]]
        assert len(ann_ids) == len(set(ann_ids)) > count * 2
        assert len({i["id"] for i in data["images"]}) == count
        assert {a["category_id"] for a in data["annotations"]} <= {1, 3, 7}
        for img in data["images"]:
            pixels = cv2.imread(str(out / split / img["file_name"]))
            assert pixels.shape == (img["height"], img["width"], 3)
        images = {i["id"]: i for i in data["images"]}
        for ann in data["annotations"]:
            x, y, w, h = ann["bbox"]
            img = images[ann["image_id"]]
            assert x >= 0 and y >= 0 and w > 0 and h > 0
            assert x + w <= img["width"] and y + h <= img["height"]
            assert 0 < ann["area"] <= w * h
            assert ann["iscrowd"] == 0


def test_all_coco_size_ranges_at_1080p(tmp_path: Path) -> None:
    out = synthesize_coco(tmp_path / "hd", num_train=4, num_val=1)
    data = json.loads((out / "annotations" / "instances_train.json").read_text())
    areas = np.array([a["area"] for a in data["annotations"]])
    assert (areas < 32**2).sum() >= 2
    assert ((areas >= 32**2) & (areas <= 96**2)).sum() >= 2
    assert (areas > 96**2).sum() >= 2
    assert data["images"][0] == {"id": 1, "file_name": "000001.jpg", "width": 1920, "height": 1080}


def test_occlusion_rule() -> None:
    kept_all, kept_visible = 0, 0
    for i in range(6):
        args = (1080 // 4, 1920 // 4, 3, (12, 15), (0.1, 0.45))
        _, everything = render_image(np.random.default_rng(i), *args, 0.0, 5)
        image, visible = render_image(np.random.default_rng(i), *args, 0.95, 5)
        kept_all += len(everything)
        kept_visible += len(visible)
        assert image.dtype == np.uint8 and image.shape == (270, 480, 3)
        # the same objects are drawn; the visibility rule only removes annotations
        assert all(a in everything for a in visible)
        for a in everything:
            assert a["area"] <= a["bbox"][2] * a["bbox"][3]
    assert kept_visible < kept_all


def test_idempotent_and_conflicts(tmp_path: Path) -> None:
    out = synthesize_coco(tmp_path / "ds", **SMALL)
    marker = out / ".complete"
    before = (marker.stat().st_mtime_ns, _files(out))
    assert synthesize_coco(tmp_path / "ds", **SMALL) == out
    assert (marker.stat().st_mtime_ns, _files(out)) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no temporary directory left
    with pytest.raises(DatasetError, match="other parameters"):
        synthesize_coco(tmp_path / "ds", **{**SMALL, "seed": 1})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    with pytest.raises(DatasetError, match="not a complete synthetic dataset"):
        synthesize_coco(tmp_path / "other", **SMALL)
    with pytest.raises(ValueError, match="num_classes"):
        synthesize_coco(tmp_path / "bad", num_classes=9, **SMALL)


def _generate(out: str) -> bytes:
    path = synthesize_coco(Path(out), **SMALL)
    return (path / "annotations" / "instances_train.json").read_bytes()


def test_concurrent_calls_agree(tmp_path: Path) -> None:
    out = str(tmp_path / "shared")
    with multiprocessing.get_context("fork").Pool(4) as pool:
        results = pool.map(_generate, [out] * 4)
    assert len(set(results)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared"]
    assert results[0] == (tmp_path / "shared" / "annotations" / "instances_train.json").read_bytes()


def test_synth_command_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = synth(tmp_path / "ds", num_train=2, num_val=1, height=270, width=480)
    line = capsys.readouterr().out.strip()
    total = sum(
        len(json.loads((out / "annotations" / f"instances_{s}.json").read_text())["annotations"])
        for s in ("train", "val")
    )
    assert line.count("\n") == 0
    assert f"2 train + 1 val images 480x270, {total} annotations (small " in line


def test_other_process_finishing_first_wins(tmp_path: Path, monkeypatch) -> None:
    import neo.data.synth as synth_module

    real_write_split = synth_module._write_split
    out = tmp_path / "ds"
    calls = []

    def write_split_while_another_finishes(*args, **kwargs):
        if not calls:
            calls.append("inner")
            synthesize_coco(out, **SMALL)  # "another process" completes the dataset meanwhile
        return real_write_split(*args, **kwargs)

    monkeypatch.setattr(synth_module, "_write_split", write_split_while_another_finishes)
    assert synthesize_coco(out, **SMALL) == out
    inner_files = _files(out)
    assert calls == ["inner"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    monkeypatch.undo()
    assert _files(synthesize_coco(tmp_path / "fresh", **SMALL)) == inner_files


def test_synth_video_option_writes_a_clip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = tmp_path / "clips" / "demo.mp4"
    synth(
        tmp_path / "ds", num_train=1, num_val=1, height=90, width=160, video=clip, video_frames=12
    )
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"{clip}: 12 frames 160x90"
    capture = cv2.VideoCapture(str(clip))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = capture.read()
    capture.release()
    assert count == 12 and ok and frame.shape == (90, 160, 3)
    assert sorted(p.name for p in clip.parent.iterdir()) == ["demo.mp4"]  # no temporary left
    with pytest.raises(ValueError, match=r"demo\.gif: the clip must be \.mp4 or \.avi"):
        synth(
            tmp_path / "ds",
            num_train=1,
            num_val=1,
            height=90,
            width=160,
            video=tmp_path / "demo.gif",
        )
    assert not (tmp_path / "demo.gif").exists()
