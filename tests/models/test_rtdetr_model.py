"""RT-DETR architecture: shapes at several sizes, positional embedding, anchors, components."""

from __future__ import annotations

import math

import pytest
import torch

from neo.models.rtdetr import (
    RTDETRPostProcessor,
    build_denoising_groups,
    build_rtdetr,
    rtdetr_config,
    sincos_position_embedding_2d,
)
from neo.models.rtdetr.hybrid_encoder import RepVggBlock
from neo.models.rtdetr.positional_encoding import SinCosPositionEmbedding2D


def official_layout_embedding(h: int, w: int, dim: int, temperature: float = 10000.0):
    """The reference formula: grid built column-major (x outer), flattened, x channels first."""
    gx, gy = torch.meshgrid(
        torch.arange(w, dtype=torch.float32), torch.arange(h, dtype=torch.float32), indexing="ij"
    )
    q = dim // 4
    omega = 1.0 / temperature ** (torch.arange(q, dtype=torch.float32) / q)
    ox = gx.flatten()[:, None] * omega[None]
    oy = gy.flatten()[:, None] * omega[None]
    return torch.cat([ox.sin(), ox.cos(), oy.sin(), oy.cos()], 1)[None]


@pytest.fixture(scope="module")
def r18_eval():
    torch.manual_seed(0)
    return build_rtdetr("r18").eval()


def test_pos_embedding_equals_official_when_square():
    for n in (1, 5, 20):
        assert torch.equal(
            sincos_position_embedding_2d(n, n, 64), official_layout_embedding(n, n, 64)
        )


def test_pos_embedding_encodes_row_and_column_on_non_square_maps():
    h, w, dim = 3, 7, 32
    emb = sincos_position_embedding_2d(h, w, dim)[0]
    q = dim // 4
    omega = 1.0 / 10000.0 ** (torch.arange(q, dtype=torch.float32) / q)
    for r in range(h):
        for c in range(w):
            expected = torch.cat(
                [(r * omega).sin(), (r * omega).cos(), (c * omega).sin(), (c * omega).cos()]
            )
            torch.testing.assert_close(emb[r * w + c], expected)
    # The column-major reference scrambles token (1, 0) on a non-square map.
    assert not torch.allclose(official_layout_embedding(h, w, dim)[0, w], emb[w])


def test_pos_embedding_cache_and_dtype():
    module = SinCosPositionEmbedding2D(16)
    a = module(4, 6, torch.device("cpu"), torch.float32)
    assert module(4, 6, torch.device("cpu"), torch.float32) is a
    b = module(4, 6, torch.device("cpu"), torch.bfloat16)
    assert b.dtype == torch.bfloat16 and b.shape == (1, 24, 16)
    with pytest.raises(ValueError, match="multiple of 4"):
        SinCosPositionEmbedding2D(30)


@pytest.mark.parametrize("hw", [(384, 640), (640, 640)])
def test_eval_output_shapes(r18_eval, hw):
    with torch.no_grad():
        out = r18_eval(torch.rand(1, 3, *hw))
    assert out["pred_logits"].shape == (1, 300, 80)
    assert out["pred_boxes"].shape == (1, 300, 4)
    assert torch.isfinite(out["pred_logits"]).all()
    assert ((out["pred_boxes"] >= 0) & (out["pred_boxes"] <= 1)).all()
    assert set(out) == {"pred_logits", "pred_boxes"}


@pytest.mark.slow
def test_full_hd_padded_forward(r18_eval):
    with torch.no_grad():
        out = r18_eval(torch.rand(1, 3, 1088, 1920))
    assert out["pred_boxes"].shape == (1, 300, 4)
    assert torch.isfinite(out["pred_boxes"]).all()


def test_size_not_multiple_of_32_raises(r18_eval):
    with pytest.raises(ValueError, match="multiples of 32"):
        r18_eval(torch.rand(1, 3, 1080, 1920))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        r18_eval(torch.rand(3, 64, 64))


def test_anchors_follow_input_size(r18_eval):
    dec = r18_eval.decoder
    shapes = [(48, 80), (24, 40), (12, 20)]
    anchors, valid = dec.anchors(shapes, torch.device("cpu"))
    assert anchors.shape == (1, 48 * 80 + 24 * 40 + 12 * 20, 4)
    assert dec.anchors(shapes, torch.device("cpu"))[0] is anchors
    boxes = torch.sigmoid(anchors[0, : 48 * 80][valid[0, : 48 * 80, 0]])
    # Level 0, row 1, column 2: centre ((2 + .5) / 80, (1 + .5) / 48), size 0.05.
    a = torch.sigmoid(anchors[0, 1 * 80 + 2])
    torch.testing.assert_close(a, torch.tensor([2.5 / 80, 1.5 / 48, 0.05, 0.05]))
    assert ((boxes > 0.01) & (boxes < 0.99)).all()
    # Column 0 of level 0 has centre 0.5 / 80 < 0.01: masked, stored as +inf.
    assert not valid[0, 0, 0] and torch.isinf(anchors[0, 0]).all()
    lvl2 = torch.sigmoid(anchors[0, 48 * 80 + 24 * 40 :][valid[0, 48 * 80 + 24 * 40 :, 0]])
    torch.testing.assert_close(lvl2[:, 2:], torch.full_like(lvl2[:, 2:], 0.2))


def test_variants_match_official_configs():
    assert rtdetr_config("r18").num_decoder_layers == 3
    assert rtdetr_config("r34").num_decoder_layers == 4
    assert rtdetr_config("r50").num_decoder_layers == 6
    assert rtdetr_config("r18").expansion == 0.5 and rtdetr_config("r50").expansion == 1.0
    with pytest.raises(ValueError, match="unknown RT-DETR variant"):
        rtdetr_config("r101x")
    with pytest.raises(ValueError, match="unknown RT-DETR override"):
        rtdetr_config("r18", hiden_dim=3)


def test_r50_backbone_is_frozen_bn_with_frozen_stem():
    model = build_rtdetr("r50", num_classes=3)
    names = {type(m).__name__ for m in model.backbone.modules()}
    assert "FrozenBatchNorm2d" in names and "BatchNorm2d" not in names
    assert not any(p.requires_grad for p in model.backbone.conv1.parameters())
    assert all(p.requires_grad for p in model.backbone.res_layers.parameters())
    assert model.decoder.dec_score_head[0].out_features == 3


def test_deterministic_given_seed():
    torch.manual_seed(3)
    a = build_rtdetr("r18", num_queries=50)
    torch.manual_seed(3)
    b = build_rtdetr("r18", num_queries=50)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_repvgg_deploy_fusion_is_equivalent():
    torch.manual_seed(0)
    block = RepVggBlock(8, 8)
    for bn in (block.conv1.norm, block.conv2.norm):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-1, 1)
    block.eval()
    x = torch.randn(2, 8, 9, 11)
    ref = block(x)
    block.convert_to_deploy()
    torch.testing.assert_close(block(x), ref, atol=1e-5, rtol=1e-5)


def test_postprocessor_scales_to_pixels_and_ranks():
    logits = torch.full((1, 3, 2), -10.0)
    logits[0, 1, 0] = 5.0  # query 1, class 0: best
    logits[0, 2, 1] = 2.0  # query 2, class 1: second
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.2], [0.25, 0.5, 0.5, 1.0], [0.5, 0.25, 0.1, 0.1]]])
    sizes = torch.tensor([[100, 200]])  # (h, w)
    res_boxes, res_scores, res_labels = RTDETRPostProcessor(num_top_queries=2)(
        {"pred_logits": logits, "pred_boxes": boxes}, sizes
    )
    assert res_labels[0].tolist() == [0, 1]
    torch.testing.assert_close(res_scores[0], torch.sigmoid(torch.tensor([5.0, 2.0])))
    torch.testing.assert_close(
        res_boxes[0], torch.tensor([[0.0, 0.0, 100.0, 100.0], [90.0, 20.0, 110.0, 30.0]])
    )
    with pytest.raises(ValueError, match="sizes must have shape"):
        RTDETRPostProcessor()({"pred_logits": logits, "pred_boxes": boxes}, torch.tensor([1, 2]))


def test_denoising_groups_structure():
    torch.manual_seed(0)
    targets = [
        {"labels": torch.tensor([1, 2, 3]), "boxes": torch.rand(3, 4) * 0.5 + 0.2},
        {"labels": torch.tensor([4]), "boxes": torch.rand(1, 4) * 0.5 + 0.2},
    ]
    embed = torch.nn.Embedding(11, 8, padding_idx=10)
    dn = build_denoising_groups(targets, 10, num_queries=5, class_embed=embed)
    groups = 100 // 3
    num_dn = 2 * 3 * groups
    assert dn.meta["dn_num_group"] == groups and dn.meta["dn_num_split"] == [num_dn, 5]
    assert dn.content.shape == (2, num_dn, 8) and dn.boxes_unact.shape == (2, num_dn, 4)
    mask = dn.attn_mask
    assert mask.shape == (num_dn + 5, num_dn + 5)
    assert mask[num_dn:, :num_dn].all() and not mask[:, num_dn:].any()
    assert not mask[:6, :6].any() and mask[:6, 6:num_dn].all() and mask[6:12, :6].all()
    # Positives are the first max_gt slots of each group, only real boxes.
    assert dn.meta["dn_positive_idx"][0].tolist()[:6] == [0, 1, 2, 6, 7, 8]
    assert dn.meta["dn_positive_idx"][1].tolist()[:3] == [0, 6, 12]
    assert len(dn.meta["dn_positive_idx"][1]) == groups
    assert torch.isfinite(dn.boxes_unact).all()


def test_denoising_empty_batch_gets_dummy_group():
    embed = torch.nn.Embedding(4, 8, padding_idx=3)
    empty = {"labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4)}
    dn = build_denoising_groups([empty, empty], 3, num_queries=4, class_embed=embed)
    assert dn.meta["dn_num_split"] == [2, 4]
    assert all(len(p) == 0 for p in dn.meta["dn_positive_idx"])
    assert math.isfinite(dn.boxes_unact.abs().max().item())
