import contextlib
import copy
import io
import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from pycocotools.coco import COCO as RefCOCO
from pycocotools.cocoeval import COCOeval as RefCOCOeval

from neo.metrics import COCO_STAT_NAMES, CocoEvaluator, evaluate_coco, merge_rank_results

CATEGORY_IDS = (2, 5, 11, 40)


def random_ground_truth(rng: np.random.Generator, num_images: int = 12) -> dict:
    """Random COCO ground truth: boxes over all size ranges, some crowd, some empty images."""
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        width, height = int(rng.integers(300, 900)), int(rng.integers(300, 700))
        images.append(
            {"id": image_id * 3, "file_name": f"{image_id}.jpg", "width": width, "height": height}
        )
        if image_id % 5 == 0:
            continue  # image without ground truth
        for _ in range(int(rng.integers(1, 9))):
            side = float(np.exp(rng.uniform(np.log(6), np.log(260))))
            w = float(np.clip(side * rng.uniform(0.5, 2.0), 2, width - 1))
            h = float(np.clip(side * rng.uniform(0.5, 2.0), 2, height - 1))
            x, y = float(rng.uniform(0, width - w)), float(rng.uniform(0, height - h))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id * 3,
                    "category_id": int(rng.choice(CATEGORY_IDS)),
                    "bbox": [x, y, w, h],
                    "area": w * h * float(rng.uniform(0.6, 1.0)),
                    "iscrowd": int(rng.random() < 0.08 or len(annotations) == 3),
                }
            )
    categories = [{"id": c, "name": f"class{c}"} for c in CATEGORY_IDS]
    return {"images": images, "annotations": annotations, "categories": categories}


def random_detections(rng: np.random.Generator, gt: dict) -> list[dict]:
    """Jittered ground-truth boxes (some with a wrong class) plus random false positives."""
    dets = []
    skip = {img["id"] for img in gt["images"][1::4]}  # images without detections
    for ann in gt["annotations"]:
        if ann["image_id"] in skip or rng.random() < 0.15:
            continue
        x, y, w, h = ann["bbox"]
        for _ in range(int(rng.integers(1, 3))):
            jitter = rng.normal(0, 0.12, 4) * np.array([w, h, w, h])
            cat = ann["category_id"] if rng.random() < 0.85 else int(rng.choice(CATEGORY_IDS))
            dets.append(
                {
                    "image_id": ann["image_id"],
                    "category_id": cat,
                    "bbox": [
                        x + jitter[0],
                        y + jitter[1],
                        max(1.0, w + jitter[2]),
                        max(1.0, h + jitter[3]),
                    ],
                    "score": float(rng.random()),
                }
            )
    for img in gt["images"]:
        if img["id"] in skip:
            continue
        for _ in range(int(rng.integers(0, 6))):
            w, h = float(rng.uniform(4, 200)), float(rng.uniform(4, 200))
            dets.append(
                {
                    "image_id": img["id"],
                    "category_id": int(rng.choice(CATEGORY_IDS)),
                    "bbox": [
                        float(rng.uniform(0, img["width"] - 4)),
                        float(rng.uniform(0, img["height"] - 4)),
                        w,
                        h,
                    ],
                    "score": float(rng.random()),
                }
            )
    return dets


def reference_stats(gt: dict, dets: list[dict], image_ids: list[int] | None = None) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = RefCOCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(dets))
        ev = RefCOCOeval(coco_gt, coco_dt, "bbox")
        if image_ids is not None:
            ev.params.imgIds = sorted(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats)


def as_array(stats: dict[str, float]) -> np.ndarray:
    assert list(stats) == list(COCO_STAT_NAMES)
    return np.array([stats[k] for k in COCO_STAT_NAMES])


@pytest.mark.parametrize("seed", range(6))
def test_equals_pycocotools(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gt = random_ground_truth(rng, num_images=int(rng.integers(6, 30)))
    dets = random_detections(rng, gt)
    areas = np.array([a["area"] for a in gt["annotations"]])
    assert (areas < 32**2).any() and (areas > 96**2).any()
    assert any(a["iscrowd"] for a in gt["annotations"])
    expected = reference_stats(gt, dets)
    assert (expected > 0).all()
    np.testing.assert_allclose(as_array(evaluate_coco(gt, dets)), expected, rtol=0, atol=1e-12)


def test_undefined_statistic_is_minus_one() -> None:
    rng = np.random.default_rng(7)
    gt = random_ground_truth(rng)
    gt["annotations"] = [a for a in gt["annotations"] if a["area"] >= 32**2]
    dets = random_detections(rng, gt)
    stats = evaluate_coco(gt, dets)
    assert stats["APs"] == -1.0 and stats["ARs"] == -1.0
    np.testing.assert_allclose(as_array(stats), reference_stats(gt, dets), rtol=0, atol=1e-12)


def test_inputs_not_mutated_and_path_equals_dict(tmp_path) -> None:
    rng = np.random.default_rng(3)
    gt = random_ground_truth(rng)
    dets = random_detections(rng, gt)
    gt_before, dets_before = copy.deepcopy(gt), copy.deepcopy(dets)
    from_dict = evaluate_coco(gt, dets)
    assert gt == gt_before and dets == dets_before
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(gt))
    assert evaluate_coco(path, dets) == from_dict
    assert evaluate_coco(str(path), dets) == from_dict


def test_empty_detections() -> None:
    gt = random_ground_truth(np.random.default_rng(1))
    stats = evaluate_coco(gt, [])
    assert set(stats.values()) <= {0.0, -1.0}
    assert stats["AP"] == 0.0 and stats["AR100"] == 0.0


def test_bad_ids_and_missing_file(tmp_path) -> None:
    gt = random_ground_truth(np.random.default_rng(2))
    good = {
        "image_id": gt["images"][0]["id"],
        "category_id": CATEGORY_IDS[0],
        "bbox": [1, 2, 3, 4],
        "score": 0.5,
    }
    with pytest.raises(ValueError, match="image id 999999"):
        evaluate_coco(gt, [good, {**good, "image_id": 999999}])
    with pytest.raises(ValueError, match="category id 1 "):
        evaluate_coco(gt, [{**good, "category_id": 1}])
    with pytest.raises(ValueError, match="bbox"):
        evaluate_coco(gt, [{**good, "bbox": [1, 2, 3]}])
    with pytest.raises(FileNotFoundError, match=r"missing\.json"):
        evaluate_coco(tmp_path / "missing.json", [])


def test_image_subset_equals_pycocotools_subset() -> None:
    rng = np.random.default_rng(11)
    gt = random_ground_truth(rng, num_images=20)
    dets = random_detections(rng, gt)
    subset = [img["id"] for img in gt["images"][::3]]
    got = as_array(evaluate_coco(gt, dets, image_ids=subset))
    np.testing.assert_allclose(got, reference_stats(gt, dets, subset), rtol=0, atol=1e-12)
    assert not np.allclose(got, as_array(evaluate_coco(gt, dets)))


def test_evaluator_batches_equal_one_shot() -> None:
    rng = np.random.default_rng(5)
    gt = random_ground_truth(rng, num_images=17)
    dets = random_detections(rng, gt)
    evaluator = CocoEvaluator(gt)
    ids = [img["id"] for img in gt["images"]]
    for start in range(0, len(ids), 4):
        batch = ids[start : start + 4]
        evaluator.update([d for d in dets if d["image_id"] in batch], batch)
    assert evaluator.compute() == evaluate_coco(gt, dets)
    # an image repeated later (sampler padding) does not count its detections twice
    evaluator.update([d for d in dets if d["image_id"] == ids[0]], [ids[0]])
    assert evaluator.compute() == evaluate_coco(gt, dets)
    evaluator.reset()
    evaluator.update([d for d in dets if d["image_id"] in ids[:5]], ids[:5])
    partial = evaluator.compute()
    assert partial == evaluate_coco(gt, dets, image_ids=ids[:5])
    assert partial != evaluate_coco(gt, dets)


def test_evaluator_rejects_detection_outside_batch() -> None:
    gt = random_ground_truth(np.random.default_rng(4))
    evaluator = CocoEvaluator(gt)
    a, b = gt["images"][0]["id"], gt["images"][1]["id"]
    det = {"image_id": b, "category_id": CATEGORY_IDS[0], "bbox": [0, 0, 5, 5], "score": 1.0}
    with pytest.raises(ValueError, match="not among the batch"):
        evaluator.update([det], [a])


def test_merge_rank_results_keeps_one_rank_per_image() -> None:
    rng = np.random.default_rng(8)
    gt = random_ground_truth(rng, num_images=9)
    dets = random_detections(rng, gt)
    ids = [img["id"] for img in gt["images"]]
    # two ranks: rank 1 also evaluated ids[0] (padding); its copy has an extra false positive
    rank0_ids, rank1_ids = ids[0::2], [*ids[1::2], ids[0]]
    extra = {
        "image_id": ids[0],
        "category_id": CATEGORY_IDS[1],
        "bbox": [0, 0, 50, 50],
        "score": 0.99,
    }
    rank0 = ([d for d in dets if d["image_id"] in rank0_ids], rank0_ids)
    rank1 = ([*[d for d in dets if d["image_id"] in rank1_ids], extra], rank1_ids)
    merged, seen = merge_rank_results([rank0, rank1])
    assert seen == sorted(ids)
    assert extra not in merged
    assert sorted(map(json.dumps, merged)) == sorted(map(json.dumps, dets))
    assert evaluate_coco(gt, merged) == evaluate_coco(gt, dets)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(
    rank: int, world_size: int, port: int, gt: dict, dets: list[dict], out: str
) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        ids = [img["id"] for img in gt["images"]]
        padded = ids + ids[: (-len(ids)) % world_size]  # DistributedSampler-style padding
        mine = padded[rank::world_size]
        evaluator = CocoEvaluator(gt)
        for start in range(0, len(mine), 2):
            batch = mine[start : start + 2]
            evaluator.update([d for d in dets if d["image_id"] in batch], batch)
        torch.save(evaluator.compute(), f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_two_processes_gloo(tmp_path) -> None:
    rng = np.random.default_rng(9)
    gt = random_ground_truth(rng, num_images=11)  # odd: one image is evaluated on both ranks
    dets = random_detections(rng, gt)
    mp.spawn(_ddp_worker, args=(2, _free_port(), gt, dets, str(tmp_path)), nprocs=2)
    expected = evaluate_coco(gt, dets)
    for rank in range(2):
        assert torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) == expected


def test_per_class_ap_equals_the_evaluation_of_that_class_alone() -> None:
    rng = np.random.default_rng(8)
    gt = random_ground_truth(rng, num_images=15)
    dets = random_detections(rng, gt)
    evaluator = CocoEvaluator(gt)
    evaluator.update(dets, [img["id"] for img in gt["images"]])
    overall = evaluator.compute()["AP"]
    details = evaluator.details
    for category, ap in zip(details.category_ids, details.class_ap, strict=True):
        alone = {**gt, "categories": [c for c in gt["categories"] if c["id"] == category]}
        alone["annotations"] = [a for a in gt["annotations"] if a["category_id"] == category]
        mine = [d for d in dets if d["category_id"] == category]
        assert ap == pytest.approx(evaluate_coco(alone, mine)["AP"], abs=1e-9)
    assert np.mean(details.class_ap) == pytest.approx(overall, abs=1e-9)
