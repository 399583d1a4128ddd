"""RTDETRTask: Lightning training (fp32 and bf16 autocast), official weights, boxes, detection."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
import yaml
from lightning import Trainer

from neo.cli import main
from neo.data import DemoCocoDataModule
from neo.models.rtdetr import build_rtdetr
from neo.tasks import RTDETRTask
from neo.tasks.rtdetr import pad_to_multiple, xyxy_pixels_to_cxcywh_normalized

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "tiny_rtdetr.yaml")
TINY = dict(
    variant="r18", num_queries=20, num_top_queries=25, hidden_dim=32, nhead=4,
    num_decoder_layers=1, decoder_ffn_dim=64, encoder_ffn_dim=64, num_denoising=10,
)


def tiny_task(num_classes: int = 3, **kwargs) -> RTDETRTask:
    torch.manual_seed(0)
    return RTDETRTask(num_classes, **{**TINY, **kwargs})


def targets_for(boxes: list[list[float]], labels: list[int]) -> dict:
    return {"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels)}


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    (metrics,) = run_dir.rglob("metrics.csv")
    with open(metrics) as f:
        return list(csv.DictReader(f))


def tiny_data() -> DemoCocoDataModule:
    config = yaml.safe_load(Path(CONFIG).read_text())
    return DemoCocoDataModule(**config["data"]["init_args"])


def test_fit_through_the_cli_trains_evaluates_and_checkpoints(tmp_path):
    main(["fit", "--config", CONFIG, "--trainer.default_root_dir", str(tmp_path),
          "--trainer.logger.init_args.save_dir", str(tmp_path)])
    rows = read_metrics(tmp_path)
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert losses and all(math.isfinite(v) for v in losses)
    assert [0.0 <= float(r["val/AP"]) <= 1.0 for r in rows if r.get("val/AP")] == [True]
    (ckpt,) = tmp_path.rglob("last.ckpt")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["global_step"] == 2
    assert state["hyper_parameters"]["variant"] == "r18"
    assert state["hyper_parameters"]["hidden_dim"] == 64
    # 3 demo classes linked from the data; two decoder layers from the config's overrides
    assert state["state_dict"]["model.decoder.dec_score_head.1.weight"].shape == (3, 64)


def test_bf16_autocast_training_keeps_the_loss_in_float32(tmp_path):
    trainer = Trainer(accelerator="cpu", precision="bf16-mixed", fast_dev_run=2, logger=False,
                      enable_progress_bar=False, enable_model_summary=False,
                      default_root_dir=tmp_path)
    task = tiny_task()
    before = task.model.decoder.dec_score_head[-1].weight.detach().clone()
    trainer.fit(task, datamodule=tiny_data())
    assert math.isfinite(float(trainer.callback_metrics["train/loss"]))
    assert not torch.equal(before, task.model.decoder.dec_score_head[-1].weight)

    images = torch.rand(2, 3, 64, 96)
    targets = [targets_for([[10, 10, 40, 50]], [1]), targets_for([[5, 20, 90, 60]], [2])]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = task.compute_losses(images, targets)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())


def test_nonfinite_predictions_are_skipped_by_the_guard():
    task = tiny_task()
    with torch.no_grad():
        task.model.decoder.enc_score_head.bias.fill_(float("nan"))
    images = torch.zeros(1, 3, 64, 64, dtype=torch.uint8)
    batch = (images, [targets_for([[4, 4, 30, 30]], [0])])
    with pytest.warns(UserWarning, match="non-finite loss"):
        assert task.training_step(batch, 0) is None
    assert task._nonfinite_in_a_row == 1


def test_pretrained_checkpoint_with_other_class_count(tmp_path):
    torch.manual_seed(1)
    overrides = {k: v for k, v in TINY.items() if k not in ("variant", "num_top_queries")}
    official = build_rtdetr("r18", num_classes=80, **overrides).state_dict()
    official["decoder.enc_score_head.bias"].fill_(7.0)
    path = tmp_path / "rtdetrv2_coco.pth"
    torch.save({"ema": {"module": official}, "date": "2024"}, path)

    task = tiny_task(3, pretrained_checkpoint=path)
    loaded = task.model.state_dict()
    class_keys = {k for k in loaded if loaded[k].shape != official[k].shape}
    assert any("dec_score_head" in k for k in class_keys)
    assert any("enc_score_head" in k for k in class_keys)
    assert any("denoising_class_embed" in k for k in class_keys)
    assert loaded["decoder.enc_score_head.weight"].shape[0] == 3
    for key, value in loaded.items():
        if key not in class_keys:
            assert torch.equal(value, official[key]), key
    # class heads are freshly drawn (prior-probability bias), not taken from the file
    prior_bias = torch.full((3,), -4.59512)
    assert torch.allclose(loaded["decoder.enc_score_head.bias"], prior_bias, atol=1e-4)


def test_xyxy_pixels_to_normalized_cxcywh():
    boxes = torch.tensor([[0.0, 0.0, 160.0, 96.0], [40.0, 24.0, 80.0, 72.0]])
    out = xyxy_pixels_to_cxcywh_normalized(boxes, height=96, width=160)
    expected = torch.tensor([[0.5, 0.5, 1.0, 1.0], [0.375, 0.5, 0.25, 0.5]])
    assert torch.allclose(out, expected)
    assert xyxy_pixels_to_cxcywh_normalized(torch.zeros(0, 4), 96, 160).shape == (0, 4)


def test_pad_to_multiple_pads_bottom_right_only():
    images = torch.ones(1, 3, 90, 160)
    padded = pad_to_multiple(images)
    assert padded.shape == (1, 3, 96, 160)
    assert padded[..., :90, :].eq(1).all() and padded[..., 90:, :].eq(0).all()


def test_detect_returns_input_pixel_boxes_and_keeps_train_mode():
    task = tiny_task()
    task.train()
    images = torch.rand(2, 3, 90, 160)
    detections = task.detect(images)
    assert task.model.training
    assert len(detections) == 2
    for det in detections:
        assert det["boxes"].shape == (25, 4) and det["scores"].shape == (25,)
        assert det["labels"].min() >= 0 and det["labels"].max() < 3
        boxes = det["boxes"]
        assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
        # box centres (sigmoid outputs) lie inside the padded 96x160 input, in pixels
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        assert centres.min() >= 0 and centres[:, 0].max() <= 160 and centres[:, 1].max() <= 96
        assert centres.max() > 2.0


def test_detect_scales_model_boxes_by_the_input_size(monkeypatch):
    task = tiny_task(num_classes=2)
    fake = {
        "pred_logits": torch.tensor([[[5.0, -5.0], [-5.0, 4.0]]]),
        "pred_boxes": torch.tensor([[[0.5, 0.5, 0.5, 0.5], [0.25, 0.25, 0.1, 0.1]]]),
    }
    monkeypatch.setattr(task.model, "forward", lambda images, targets=None: fake)
    (det,) = task.detect(torch.zeros(1, 3, 64, 128))
    assert det["labels"][:2].tolist() == [0, 1]
    assert torch.allclose(det["boxes"][0], torch.tensor([32.0, 16.0, 96.0, 48.0]))
    assert torch.allclose(det["boxes"][1], torch.tensor([25.6, 12.8, 38.4, 19.2]))
