"""Anchors fitted to the training boxes: recall, k-means fit, the task stores them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neo.models.anchors import (
    anchor_recall,
    anchor_shapes,
    best_anchor_iou,
    choose_anchors,
    fit_anchors,
)
from neo.tasks import FasterRCNNTask

TINY = {"returned_layers": [3, 4], "fpn_channels": 16, "box_head_dim": 32}


def thin_boxes(count=300, seed=0):
    """Spectrogram-like boxes: bursts 20-60x wider than tall and a few square ones."""
    rng = np.random.default_rng(seed)
    heights = rng.uniform(4, 8, count)
    widths = heights * rng.uniform(20, 60, count)
    square = rng.uniform(20, 60, count // 10)
    return np.concatenate([np.stack([widths, heights], 1), np.stack([square, square], 1)])


def test_anchor_shapes_follow_torchvisions_height_over_width_ratio():
    shapes = anchor_shapes([32], [0.25, 1.0, 4.0])
    np.testing.assert_allclose(shapes, [[64, 16], [32, 32], [16, 64]])


def test_recall_counts_boxes_with_a_centred_anchor_at_iou_half():
    boxes = np.array([[32, 32], [64, 16], [200, 4]])
    best = best_anchor_iou(boxes, anchor_shapes([32], [1.0]))
    np.testing.assert_allclose(best, [1, 512 / 1536, 128 / 1696])
    assert anchor_recall(boxes, [32], [1.0]) == pytest.approx(1 / 3)
    assert anchor_recall(boxes, [32], [0.25, 1.0]) == pytest.approx(2 / 3)  # a 64x16 anchor
    assert anchor_recall(np.zeros((0, 2)), [32], [1.0]) == 1.0


def test_fitting_raises_the_recall_of_thin_boxes_deterministically():
    boxes = thin_boxes()
    before = anchor_recall(boxes, [16, 32, 64, 128], [0.5, 1.0, 2.0])
    sizes, ratios = fit_anchors(boxes, num_levels=4)
    assert sizes == sorted(sizes) and len(sizes) == 4 and len(ratios) == 3
    assert min(ratios) < 0.1  # a shape for the bursts
    after = anchor_recall(boxes, sizes, ratios)
    assert before < 0.2 and after > 0.9
    assert fit_anchors(boxes, num_levels=4) == (sizes, ratios)


def test_the_task_keeps_fitted_anchors_in_its_hyperparameters_and_a_checkpoint_rebuilds_them(
    tmp_path, capsys
):
    torch.manual_seed(0)
    task = FasterRCNNTask(num_classes=2, fit_anchors=True, **TINY)
    task.fit_anchors_to(thin_boxes())
    assert "fitted to the data" in capsys.readouterr().out
    assert task.hparams.fit_anchors is False
    sizes, ratios = task.hparams.anchor_sizes, task.hparams.aspect_ratios
    assert len(sizes) == 3 and min(ratios) < 0.1
    rebuilt = FasterRCNNTask(**task.hparams)
    generator = rebuilt.model.rpn.anchor_generator
    assert [s[0] for s in generator.sizes] == [s[0] for s in sizes]
    assert list(generator.aspect_ratios[0]) == ratios
    rebuilt.load_state_dict(task.state_dict())  # same shapes: the checkpoint loads
    images = torch.rand(1, 3, 64, 128)
    with torch.no_grad():
        for a, b in zip(task.eval()(images), rebuilt.eval()(images), strict=True):
            assert torch.equal(a, b)


def test_more_aspect_ratios_rebuild_the_rpn_head():
    from neo.models.faster_rcnn import set_anchors

    task = FasterRCNNTask(num_classes=2, **TINY)
    set_anchors(task.model, [(16.0,), (32.0,), (64.0,)], [0.05, 0.2, 1.0, 5.0])
    assert task.model.rpn.head.cls_logits.out_channels == 4
    task.eval()(torch.rand(1, 3, 64, 64))


def test_fitted_anchors_that_cover_fewer_boxes_are_not_used(capsys):
    task = FasterRCNNTask(num_classes=2, fit_anchors=True, **TINY)
    task.fit_anchors_to(np.array([[128.0, 128.0], [256.0, 256.0], [512.0, 512.0]]))
    assert "keeping these" in capsys.readouterr().out
    assert task.hparams.fit_anchors is True and task.hparams.anchor_sizes is None


def test_configured_sizes_are_kept_when_fitted_ratios_alone_cover_the_boxes():
    rng = np.random.default_rng(0)
    scale = np.exp(rng.uniform(np.log(12), np.log(140), 400))  # the configured sizes' range
    ratio = np.exp(rng.choice([np.log(0.3), np.log(3.0)], 400) + rng.normal(0, 0.1, 400))
    boxes = np.stack([scale / np.sqrt(ratio), scale * np.sqrt(ratio)], 1)
    sizes, ratios, before, after = choose_anchors(boxes, [16, 32, 64, 128], [0.5, 1.0, 2.0])
    assert sizes == [16, 32, 64, 128] and after > before
    assert min(ratios) < 0.4 and max(ratios) > 2.5
    tiny = np.exp(rng.uniform(np.log(3), np.log(7), (200, 2)))  # far below the smallest size
    sizes, _, before, after = choose_anchors(tiny, [16, 32, 64, 128], [0.5, 1.0, 2.0])
    assert sizes != [16.0, 32.0, 64.0, 128.0] and min(sizes) < 8 and after > 0.8 > before
