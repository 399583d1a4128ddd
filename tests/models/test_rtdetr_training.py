"""RT-DETR training pieces: matcher optimality, criterion, learning, AMP, checkpoint loading."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from neo.models.rtdetr import (
    HungarianMatcher,
    RTDETRCriterion,
    build_rtdetr,
    load_official_state_dict,
)

SIZE = 128
SMALL = {"num_queries": 100}


def two_images():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, SIZE, SIZE, generator=gen)
    targets = [
        {
            "labels": torch.tensor([1, 3]),
            "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.25], [0.7, 0.6, 0.3, 0.2]]),
        },
        {"labels": torch.tensor([0]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]])},
    ]
    return images, targets


@pytest.fixture(scope="module")
def r18_small():
    torch.manual_seed(0)
    return build_rtdetr("r18", num_classes=4, **SMALL)


def test_matcher_equals_brute_force_optimum():
    gen = torch.Generator().manual_seed(0)
    matcher = HungarianMatcher()
    for trial in range(20):
        q, n = 5, 1 + trial % 4
        logits = torch.randn(1, q, 3, generator=gen)
        cxcy = torch.rand(1, q, 2, generator=gen) * 0.6 + 0.2
        boxes = torch.cat([cxcy, torch.rand(1, q, 2, generator=gen) * 0.3 + 0.05], -1)
        tgt = {
            "labels": torch.randint(0, 3, (n,), generator=gen),
            "boxes": torch.cat(
                [
                    torch.rand(n, 2, generator=gen) * 0.6 + 0.2,
                    torch.rand(n, 2, generator=gen) * 0.3 + 0.05,
                ],
                -1,
            ),
        }
        cost = matcher.cost_matrix(logits[0], boxes[0], tgt["labels"], tgt["boxes"])
        rows, cols = matcher({"pred_logits": logits, "pred_boxes": boxes}, [tgt])[0]
        assert sorted(cols.tolist()) == list(range(n)) and len(set(rows.tolist())) == n
        found = cost[rows, cols].sum().item()
        best = min(
            sum(cost[p[j], j].item() for j in range(n)) for p in itertools.permutations(range(q), n)
        )
        assert found == pytest.approx(best, abs=1e-5)


def test_matcher_handles_images_without_boxes():
    matcher = HungarianMatcher()
    outputs = {"pred_logits": torch.randn(2, 4, 3), "pred_boxes": torch.rand(2, 4, 4) * 0.5 + 0.1}
    empty = {"labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4)}
    one = {"labels": torch.tensor([2]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]])}
    res = matcher(outputs, [empty, one])
    assert len(res[0][0]) == 0 and len(res[1][0]) == 1
    assert all(len(r[0]) == 0 for r in matcher(outputs, [empty, empty]))


def test_training_outputs_and_loss_terms(r18_small):
    images, targets = two_images()
    r18_small.train()
    out = r18_small(images, targets)
    assert out["pred_logits"].shape == (2, 100, 4)
    assert len(out["aux_outputs"]) == 2 and len(out["enc_aux_outputs"]) == 1
    assert len(out["dn_aux_outputs"]) == 3
    num_dn = out["dn_meta"]["dn_num_split"][0]
    assert num_dn == 2 * 2 * (100 // 2)
    assert out["dn_aux_outputs"][0]["pred_boxes"].shape == (2, num_dn, 4)
    losses = RTDETRCriterion(num_classes=4)(out, targets)
    expected = {"loss_vfl", "loss_bbox", "loss_giou"}
    for suffix in ["_aux_0", "_aux_1", "_dn_0", "_dn_1", "_dn_2", "_enc_0"]:
        expected |= {f"loss_vfl{suffix}", f"loss_bbox{suffix}", f"loss_giou{suffix}"}
    assert set(losses) == expected
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    with pytest.raises(ValueError, match="targets are required"):
        r18_small(images)


def test_criterion_with_images_without_boxes(r18_small):
    images, targets = two_images()
    empty = {"labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4)}
    r18_small.train()
    crit = RTDETRCriterion(num_classes=4)
    for batch_targets in ([targets[0], empty], [empty, empty]):
        r18_small.zero_grad()
        out = r18_small(images, batch_targets)
        losses = crit(out, batch_targets)
        total = sum(losses.values())
        assert torch.isfinite(total)
        total.backward()
        grads = [p.grad for p in r18_small.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
    # No box anywhere: box terms vanish, classification still pushes scores down.
    assert losses["loss_bbox"] == 0 and losses["loss_giou"] == 0 and losses["loss_vfl"] > 0


def test_loss_decreases_over_a_few_steps():
    torch.manual_seed(0)
    model = build_rtdetr("r18", num_classes=4, **SMALL)
    model.train()
    crit = RTDETRCriterion(num_classes=4)
    images, targets = two_images()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    totals = []
    for _ in range(8):
        torch.manual_seed(1)  # same denoising noise every step
        loss = sum(crit(model(images, targets), targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        totals.append(loss.item())
    assert all(math.isfinite(t) for t in totals)
    assert totals[-1] < 0.75 * totals[0], totals


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_has_no_nan(r18_small, dtype):
    images, targets = two_images()
    r18_small.train()
    r18_small.zero_grad()
    with torch.autocast("cpu", dtype=dtype):
        out = r18_small(images, targets)
        losses = RTDETRCriterion(num_classes=4)(out, targets)
    total = sum(losses.values())
    assert total.dtype == torch.float32 and torch.isfinite(total)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in r18_small.parameters() if p.grad is not None)


def _eval_logits(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)["pred_logits"]


def test_load_official_layout_from_ema_file(tmp_path, r18_small):
    torch.manual_seed(5)
    source = build_rtdetr("r18", num_classes=4, **SMALL)
    # neo's keys are the official keys; add the buffers the official release also stores.
    state = dict(source.state_dict())
    state["decoder.anchors"] = torch.zeros(1, 8400, 4)
    state["decoder.valid_mask"] = torch.ones(1, 8400, 1, dtype=torch.bool)
    path = tmp_path / "official.pth"
    torch.save({"ema": {"module": state, "updates": 10}, "model": {}}, path)

    report = load_official_state_dict(r18_small, path)
    assert set(report.skipped) == {"decoder.anchors", "decoder.valid_mask"}
    assert not report.missing and not report.reinitialized
    assert len(report.loaded) == len(source.state_dict())
    assert "loaded" in report.summary()
    x = torch.rand(1, 3, SIZE, SIZE)
    torch.testing.assert_close(_eval_logits(r18_small, x), _eval_logits(source, x))


def test_load_with_different_num_classes_reinitialises_class_tensors():
    torch.manual_seed(6)
    source = build_rtdetr("r18", num_classes=80, **SMALL).state_dict()
    model = build_rtdetr("r18", num_classes=4, **SMALL)
    report = load_official_state_dict(model, {"model": source})
    reinit = set(report.reinitialized)
    assert "decoder.denoising_class_embed.weight" in reinit
    assert {"decoder.enc_score_head.weight", "decoder.enc_score_head.bias"} <= reinit
    assert {
        f"decoder.dec_score_head.{i}.{p}" for i in range(3) for p in ("weight", "bias")
    } <= reinit
    assert "re-initialised" in report.summary()
    loaded = model.state_dict()
    torch.testing.assert_close(
        loaded["decoder.enc_bbox_head.layers.0.weight"],
        source["decoder.enc_bbox_head.layers.0.weight"],
    )
    assert loaded["decoder.enc_score_head.weight"].shape == (4, 256)
    assert torch.allclose(loaded["decoder.enc_score_head.bias"], torch.tensor(-4.59512), atol=1e-4)
    assert not loaded["decoder.denoising_class_embed.weight"][4].any()
    with pytest.raises(ValueError, match="number of classes differs"):
        load_official_state_dict(model, source, strict_classes=True)


def test_load_errors_are_clear(tmp_path, r18_small):
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        load_official_state_dict(r18_small, tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"bad\.pth"):
        load_official_state_dict(r18_small, bad)
    with pytest.raises(ValueError, match="no checkpoint key matches"):
        load_official_state_dict(r18_small, {"foo.weight": torch.zeros(2)})
    r34_state = {"backbone.res_layers.1.blocks.0.branch2a.conv.weight": torch.zeros(1, 1, 1, 1)}
    with pytest.raises(ValueError, match="wrong variant"):
        load_official_state_dict(r18_small, r34_state)
