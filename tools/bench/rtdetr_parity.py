"""Numerical parity of neo's RT-DETRv2 with the official lyuwenyu/RT-DETR implementation.

The official code is imported from a separate checkout (never from neo); it needs only torch,
torchvision and pyyaml. Get it with e.g.

    git clone https://github.com/lyuwenyu/RT-DETR /tmp/rtdetr_official
    uv run --with pyyaml python tools/bench/rtdetr_parity.py \
        --official /tmp/rtdetr_official/rtdetrv2_pytorch --variants r18 r34 r50

For each variant: the official model is built from its yml config with a seed, its weights are
perturbed (zero-initialised heads would hide errors) and its batch-norm statistics calibrated on
random images, its state dict is saved in the official layout, loaded into
``build_rtdetr(variant)`` with ``load_official_state_dict`` and the eval outputs are compared on
one 640x640 input, in the contiguous NCHW layout (exact) and channels-last (neo's default, within
float rounding). Then on a 384x640 input: neo (row-major positions) vs official (column-major
positions), and neo with its positional embedding swapped for the official formula. Finally one
training step (denoising, all auxiliary outputs and the loss terms) is compared.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from neo.models.rtdetr import RTDETRCriterion, build_rtdetr, load_official_state_dict

CONFIGS = {
    "r18": "configs/rtdetrv2/rtdetrv2_r18vd_120e_coco.yml",
    "r34": "configs/rtdetrv2/rtdetrv2_r34vd_120e_coco.yml",
    "r50": "configs/rtdetrv2/rtdetrv2_r50vd_6x_coco.yml",
}


def build_official(
    root: Path, variant: str, eval_size: list[int], plain_bn: bool = False
) -> tuple[nn.Module, nn.Module]:
    """Official model and criterion from the variant's yml (``plain_bn``: no frozen BN)."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from src.core import YAMLConfig  # official code, outside neo

    backbone = {"pretrained": False}
    if plain_bn:
        backbone["freeze_norm"] = False
    cfg = YAMLConfig(str(root / CONFIGS[variant]), PResNet=backbone, eval_spatial_size=eval_size)
    return cfg.model, cfg.criterion


def official_random_weights(root: Path, variant: str, seed: int) -> dict:
    """Official state dict with perturbed weights and calibrated BN statistics.

    Statistics are calibrated with plain BatchNorm, then loaded into the model built from the
    unmodified config (R50 uses FrozenBatchNorm2d), whose state dict is returned.
    """
    torch.manual_seed(seed)
    calibration, _ = build_official(root, variant, [640, 640], plain_bn=True)
    randomise(calibration, seed)
    official, _ = build_official(root, variant, [640, 640])
    official.load_state_dict(calibration.state_dict())
    return official.state_dict()


@torch.no_grad()
def randomise(model: nn.Module, seed: int) -> None:
    """Perturb all weights and calibrate batch-norm statistics on random images."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        p.add_(torch.randn(p.shape, generator=gen) * 0.02)
        if "denoising_class_embed" in name:
            p[-1].zero_()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average
            m.reset_running_stats()
    model.train()
    feats = None
    for _ in range(2):
        x = torch.rand(2, 3, 320, 320, generator=gen)
        feats = model.encoder(model.backbone(x))
        model.decoder._get_encoder_input(feats)
    model.eval()


def max_diff(a: dict, b: dict) -> dict[str, float]:
    return {k: (a[k] - b[k]).abs().max().item() for k in ("pred_logits", "pred_boxes")}


def column_major_patch(root: Path):
    """Replace neo's positional embedding by the official (column-major) formula."""
    from src.zoo.rtdetr.hybrid_encoder import HybridEncoder as OfficialEncoder

    from neo.models.rtdetr.positional_encoding import SinCosPositionEmbedding2D

    original = SinCosPositionEmbedding2D.forward

    def official_layout(self, height, width, device, dtype):
        emb = OfficialEncoder.build_2d_sincos_position_embedding(
            width, height, self.embed_dim, self.temperature
        )
        return emb.to(device=device, dtype=dtype)

    SinCosPositionEmbedding2D.forward = official_layout
    return lambda: setattr(SinCosPositionEmbedding2D, "forward", original)


def random_targets(gen: torch.Generator, batch: int, num_classes: int) -> list[dict]:
    targets = []
    for n in torch.randint(0, 6, (batch,), generator=gen).tolist():
        cxcy = torch.rand(n, 2, generator=gen) * 0.6 + 0.2
        wh = torch.rand(n, 2, generator=gen) * 0.3 + 0.05
        labels = torch.randint(0, num_classes, (n,), generator=gen)
        targets.append({"labels": labels, "boxes": torch.cat([cxcy, wh], 1)})
    if sum(len(t["labels"]) for t in targets) == 0:
        targets[0] = {"labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.3]])}
    return targets


def run_variant(root: Path, variant: str, seed: int, workdir: Path) -> dict[str, float]:
    results: dict[str, float] = {}
    state = official_random_weights(root, variant, seed)
    official, official_criterion = build_official(root, variant, [640, 640])
    official.load_state_dict(state)
    official.eval()
    path = workdir / f"official_{variant}.pth"
    torch.save({"model": state}, path)

    neo = build_rtdetr(variant, channels_last=False)  # the exact layout; channels-last below
    report = load_official_state_dict(neo, path)
    print(f"[{variant}] {report.summary()}")
    neo.eval()

    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(1, 3, 640, 640, generator=gen)
    with torch.no_grad():
        out_o, out_n = official(x), neo(x)
    for k, v in max_diff(out_o, out_n).items():
        results[f"640x640 {k}"] = v
    results["640x640 max|logit|"] = out_o["pred_logits"].abs().max().item()
    neo.channels_last = True  # neo's default: same maths, float rounding of another conv layout
    with torch.no_grad():
        for k, v in max_diff(out_o, neo(x)).items():
            results[f"640x640 channels-last {k}"] = v
    neo.channels_last = False

    # Non-square: official at its own eval size (anchors right, positions column-major).
    official_ns, _ = build_official(root, variant, [384, 640])
    # The official anchors are a persistent buffer tied to the eval size: keep the new ones.
    weights = {
        k: v
        for k, v in official.state_dict().items()
        if "anchors" not in k and "valid_mask" not in k
    }
    official_ns.load_state_dict(weights, strict=False)
    official_ns.eval()
    x = torch.rand(1, 3, 384, 640, generator=gen)
    with torch.no_grad():
        out_o = official_ns(x)
        for k, v in max_diff(out_o, neo(x)).items():
            results[f"384x640 row-major {k}"] = v
        restore = column_major_patch(root)
        try:
            for k, v in max_diff(out_o, neo(x)).items():
                results[f"384x640 official-pos {k}"] = v
        finally:
            restore()

    # One training forward + loss with identical RNG streams (denoising noise, matching).
    targets = random_targets(gen, 2, 80)
    x = torch.rand(2, 3, 320, 320, generator=gen)
    official.train()
    neo.train()
    torch.manual_seed(seed + 2)
    out_o = official(x, targets)
    loss_o = official_criterion(out_o, targets)
    torch.manual_seed(seed + 2)
    out_n = neo(x, targets)
    loss_n = RTDETRCriterion(num_classes=80)(out_n, targets)
    if set(loss_o) != set(loss_n):
        raise SystemExit(f"loss keys differ: {sorted(set(loss_o) ^ set(loss_n))}")
    results["train dn/aux outputs"] = max(
        (a[k] - b[k]).abs().max().item()
        for key in ("aux_outputs", "dn_aux_outputs", "enc_aux_outputs")
        for a, b in zip(out_o[key], out_n[key])
        for k in ("pred_logits", "pred_boxes")
    )
    results["train loss terms (max abs)"] = max(
        (loss_o[k] - loss_n[k]).abs().item() for k in loss_o
    )
    results["train total loss"] = sum(loss_n.values()).item()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--official", type=Path, default=Path("/tmp/rtdetr_official/rtdetrv2_pytorch")
    )
    parser.add_argument("--variants", nargs="+", default=["r18", "r34", "r50"], choices=CONFIGS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument(
        "--layout-tolerance", type=float, default=1e-3, help="for the channels-last layout"
    )
    args = parser.parse_args()
    if not (args.official / "src" / "zoo" / "rtdetr").is_dir():
        raise SystemExit(f"{args.official}: not the rtdetrv2_pytorch folder of lyuwenyu/RT-DETR")
    torch.set_grad_enabled(True)
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            results = run_variant(args.official, variant, args.seed, Path(tmp))
            for name, value in results.items():
                print(f"[{variant}] {name:40s} {value:.3e}")
            checked = [
                v
                for k, v in results.items()
                if ("640x640 pred" in k or "official-pos" in k or k.startswith("train l"))
            ]
            failed |= max(checked) > args.tolerance
            rounding = [v for k, v in results.items() if "channels-last" in k]
            failed |= max(rounding) > args.layout_tolerance
    print("PARITY FAILED" if failed else f"parity OK (tolerance {args.tolerance:g})")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
