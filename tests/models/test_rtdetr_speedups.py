"""RT-DETR's speed-ups keep its outputs: query selection on the picked rows, channels-last."""

from __future__ import annotations

import torch

from neo.models.rtdetr import build_rtdetr

SMALL = {"hidden_dim": 64, "num_queries": 30, "num_decoder_layers": 1, "decoder_ffn_dim": 128}


def select_over_all_tokens(decoder, memory, shapes):
    """The selection as computed before: every head over every token, then gathered."""
    anchors, valid = decoder.anchors(shapes, memory.device)
    memory = valid.to(memory.dtype) * memory
    out = decoder.enc_output(memory)
    logits = decoder.enc_score_head(out)
    coords = decoder.enc_bbox_head(out) + anchors
    idx = torch.topk(logits.max(-1).values, decoder.num_queries, dim=-1).indices.unsqueeze(-1)
    return tuple(t.gather(1, idx.expand(-1, -1, t.shape[-1])) for t in (out, logits, coords))


def test_query_selection_on_the_picked_rows_equals_the_full_map_with_its_gradients():
    torch.manual_seed(0)
    decoder = build_rtdetr("r18", num_classes=5, **SMALL).decoder
    with torch.no_grad():  # non-zero box heads, so the boxes depend on the memory
        for p in decoder.enc_bbox_head.parameters():
            p.normal_(0, 0.1)
    shapes = [(8, 12), (4, 6), (2, 3)]
    memory = torch.randn(2, sum(h * w for h, w in shapes), 64, requires_grad=True)
    picked = decoder._select_queries(memory, shapes)
    reference = select_over_all_tokens(decoder, memory, shapes)
    for a, b in zip(picked, reference, strict=True):
        assert torch.equal(a, b)
    weights = [torch.randn_like(t) for t in picked]
    grad = torch.autograd.grad(sum((t * w).sum() for t, w in zip(picked, weights)), memory)[0]
    expected = torch.autograd.grad(sum((t * w).sum() for t, w in zip(reference, weights)), memory)
    assert grad.abs().sum() > 0
    torch.testing.assert_close(grad, expected[0], rtol=1e-5, atol=1e-6)


def test_channels_last_gives_the_contiguous_layouts_outputs_up_to_rounding():
    torch.manual_seed(0)
    model = build_rtdetr("r18", num_classes=5, channels_last=False, **SMALL).eval()
    images = torch.rand(1, 3, 96, 160)
    with torch.no_grad():
        contiguous = model(images)
        model.channels_last = True
        last = model(images)
    for key in ("pred_logits", "pred_boxes"):
        torch.testing.assert_close(last[key], contiguous[key], rtol=1e-4, atol=1e-4)
    assert build_rtdetr("r18", num_classes=5, **SMALL).channels_last  # the default
