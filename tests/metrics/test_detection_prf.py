import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from neo.metrics.detection_prf import PRFAccumulator, match_counts, precision_recall_f1


def det(boxes, scores, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor(scores, dtype=torch.float32),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


def gt(boxes, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


def test_hand_computed_two_classes():
    # image 1: class 0 GT A=[0,0,10,10], B=[20,20,30,30]; class 1 GT C=[0,0,10,10]
    #   preds: 0.9 on A (IoU 1) -> tp; 0.8 on A again -> fp (A taken); 0.7 [20,20,30,35] on B
    #   (IoU 100/150=0.67) -> tp; 0.3 on C (class 1, below threshold) -> ignored; C -> fn
    # image 2: no GT; one class-1 pred at 0.6 -> fp
    dets = [
        det(
            [[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 35], [0, 0, 10, 10]],
            [0.9, 0.8, 0.7, 0.3],
            [0, 0, 0, 1],
        ),
        det([[5, 5, 9, 9]], [0.6], [1]),
    ]
    gts = [gt([[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10]], [0, 0, 1]), gt([], [])]
    r = precision_recall_f1(dets, gts, num_classes=2)
    assert (r["tp"], r["fp"], r["fn"]) == (2, 2, 1)
    assert r["precision"] == pytest.approx(0.5)
    assert r["recall"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    c0, c1 = r["per_class"][0], r["per_class"][1]
    assert (c0["tp"], c0["fp"], c0["fn"]) == (2, 1, 0)
    assert c0["precision"] == pytest.approx(2 / 3) and c0["recall"] == 1.0
    assert (c1["tp"], c1["fp"], c1["fn"]) == (0, 1, 1)
    assert c1["precision"] == c1["recall"] == c1["f1"] == 0.0


def test_highest_score_matches_first_and_best_iou_wins():
    # two GTs; the higher-scored pred overlaps both, takes the better one; the other pred then
    # only reaches IoU below threshold with the remaining GT
    g = gt([[0, 0, 10, 10], [2, 0, 12, 10]], [0, 0])
    d = det([[0, 0, 10, 10], [1, 0, 11, 10]], [0.6, 0.9], [0, 0])
    counts = match_counts(d, g, 1)
    # 0.9 pred [1,0,11,10]: IoU 90/110 with both -> first max (GT 0) ; 0.6 pred [0,0,10,10] with
    # GT 1: IoU 80/120 = 0.67 -> tp
    assert counts[:, 0].tolist() == [2, 0, 0]
    strict = match_counts(d, g, 1, iou_threshold=0.7)
    assert strict[:, 0].tolist() == [1, 1, 1]


def test_label_mismatch_is_fp_and_fn():
    r = precision_recall_f1([det([[0, 0, 5, 5]], [0.9], [1])], [gt([[0, 0, 5, 5]], [0])], 2)
    assert (r["tp"], r["fp"], r["fn"]) == (0, 1, 1)


def test_undefined_ratios_are_zero():
    r = precision_recall_f1([det([], [], [])], [gt([], [])], 3)
    assert r["precision"] == r["recall"] == r["f1"] == 0.0
    r = precision_recall_f1([det([], [], [])], [gt([[0, 0, 1, 1]], [2])], 3)
    assert (r["fn"], r["recall"], r["precision"]) == (1, 0.0, 0.0)


def test_score_threshold():
    d = det([[0, 0, 5, 5]], [0.49], [0])
    g = gt([[0, 0, 5, 5]], [0])
    assert precision_recall_f1([d], [g], 1)["tp"] == 0
    assert precision_recall_f1([d], [g], 1, score_threshold=0.4)["tp"] == 1


def test_bad_input():
    with pytest.raises(ValueError, match="labels"):
        precision_recall_f1([det([[0, 0, 1, 1]], [0.9], [5])], [gt([], [])], 2)
    with pytest.raises(ValueError, match="entries"):
        PRFAccumulator(2).update([det([], [], [])], [])
    with pytest.raises(ValueError):
        PRFAccumulator(0)


def test_accumulator_equals_one_shot():
    dets = [det([[0, 0, 5, 5]], [0.9], [0]), det([[0, 0, 5, 5]], [0.9], [1])]
    gts = [gt([[0, 0, 5, 5]], [0]), gt([[10, 10, 20, 20]], [1])]
    acc = PRFAccumulator(2)
    acc.update(dets[:1], gts[:1])
    acc.update(dets[1:], gts[1:])
    assert acc.compute() == precision_recall_f1(dets, gts, 2)
    acc.reset()
    assert acc.compute()["tp"] == 0


def _worker(rank, world, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        acc = PRFAccumulator(2)
        # rank 0: one tp (class 0); rank 1: one fp (class 1) and one fn (class 0)
        if rank == 0:
            acc.update([det([[0, 0, 5, 5]], [0.9], [0])], [gt([[0, 0, 5, 5]], [0])])
        else:
            acc.update([det([[0, 0, 5, 5]], [0.9], [1])], [gt([[9, 9, 12, 12]], [0])])
        r = acc.compute()
        values = (r["tp"], r["fp"], r["fn"], acc.counts.sum().item())
        (out_dir / f"{rank}.txt").write_text(" ".join(map(str, values)))
    finally:
        dist.destroy_process_group()


def test_accumulator_sums_across_ranks(tmp_path):
    mp.start_processes(
        _worker, args=(2, tmp_path / "init", tmp_path), nprocs=2, join=True, start_method="fork"
    )
    results = [tuple(map(int, (tmp_path / f"{r}.txt").read_text().split())) for r in range(2)]
    assert results[0][:3] == results[1][:3] == (1, 1, 1)
    assert results[0][3] == 1 and results[1][3] == 2  # local counts untouched by the sync


def _padded_worker(rank, world, init_file, out_dir):
    from torch.utils.data import DistributedSampler

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        acc = PRFAccumulator(1)
        # 3 images with one perfectly detected object each; the sampler pads rank 1 with image 0
        indices = list(DistributedSampler(range(3), num_replicas=world, rank=rank, shuffle=False))
        for i in indices:
            box = [[10.0 * i, 0, 10.0 * i + 5, 5]]
            acc.update([det(box, [0.9], [0])], [gt(box, [0])], image_ids=[100 + i])
        r = acc.compute()
        (out_dir / f"{rank}.txt").write_text(f"{r['tp']} {r['fp']} {r['fn']} {len(indices)}")
    finally:
        dist.destroy_process_group()


def test_accumulator_counts_each_image_once_across_ranks(tmp_path):
    mp.start_processes(
        _padded_worker, args=(2, tmp_path / "init", tmp_path), nprocs=2, join=True,
        start_method="fork",
    )
    results = [tuple(map(int, (tmp_path / f"{r}.txt").read_text().split())) for r in range(2)]
    assert results[0][3] == results[1][3] == 2  # 4 samples for 3 images: one repeated
    assert results[0][:3] == results[1][:3] == (3, 0, 0)


def test_accumulator_ignores_an_image_seen_again():
    acc = PRFAccumulator(1)
    acc.update([det([[0, 0, 5, 5]], [0.9], [0])], [gt([[0, 0, 5, 5]], [0])], image_ids=[7])
    acc.update([det([[0, 0, 5, 5]], [0.9], [0])], [gt([[0, 0, 5, 5]], [0])], image_ids=[7])
    acc.update([det([], [], [])], [gt([[0, 0, 5, 5]], [0])])  # no id: always counted
    assert (acc.compute()["tp"], acc.compute()["fn"]) == (1, 1)
    with pytest.raises(ValueError, match="2 image ids for 1 images"):
        acc.update([det([], [], [])], [gt([], [])], image_ids=[1, 2])
