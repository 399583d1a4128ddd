"""The shared detection task: parameter groups, schedule, mapping back, non-finite guard."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from neo.models.faster_rcnn import build_faster_rcnn
from neo.tasks import FasterRCNNTask
from neo.tasks.detection import DetectionTask, NonFiniteLossError, to_original_pixels


def small_task(**kwargs) -> FasterRCNNTask:
    return FasterRCNNTask(num_classes=2, returned_layers=[2, 3, 4], **kwargs)


def test_parameter_groups_split_backbone_and_decay():
    task = small_task(lr=1e-3, backbone_lr=1e-4, weight_decay=0.05)
    groups = {g["name"]: g for g in task.parameter_groups()}
    assert set(groups) == {"backbone", "backbone_no_decay", "head", "head_no_decay"}
    assert groups["backbone"]["lr"] == 1e-4 and groups["head"]["lr"] == 1e-3
    assert groups["head_no_decay"]["weight_decay"] == 0.0 and groups["head"]["weight_decay"] == 0.05
    names = {id(p): n for n, p in task.named_parameters()}
    assert all(
        names[id(p)].startswith("model.backbone.body.") for p in groups["backbone"]["params"]
    )
    assert all(p.ndim <= 1 for p in groups["backbone_no_decay"]["params"])
    assert all(p.ndim > 1 for p in groups["head"]["params"])
    total = sum(len(g["params"]) for g in groups.values())
    assert total == sum(1 for p in task.parameters() if p.requires_grad)


def test_warmup_then_multistep_schedule():
    task = small_task(lr=1.0, warmup_steps=4, milestones=[2], gamma=0.1)
    task.steps_per_epoch = lambda: 10
    config = task.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(25):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(1e-3)
    assert lrs[1] < lrs[2] < lrs[3] < lrs[4] == pytest.approx(1.0)
    assert lrs[19] == pytest.approx(1.0) and lrs[20] == pytest.approx(0.1)


def test_to_original_pixels_inverts_letterbox():
    target = {
        "scale": torch.tensor([0.5, 0.5], dtype=torch.float64),
        "offset": torch.tensor([0.0, 0.0], dtype=torch.float64),
        "orig_size": torch.tensor([1080, 1920]),
    }
    boxes = torch.tensor([[10.0, 20.0, 100.0, 200.0], [900.0, 500.0, 1000.0, 600.0]])
    out = to_original_pixels(boxes.clone(), target)
    assert out.tolist() == [[20.0, 40.0, 200.0, 400.0], [1800.0, 1000.0, 1920.0, 1080.0]]


def test_coco_results_use_dataset_category_ids():
    task = small_task()
    task.category_ids = [3, 7]
    target = {
        "scale": torch.ones(2, dtype=torch.float64),
        "offset": torch.zeros(2, dtype=torch.float64),
        "orig_size": torch.tensor([100, 200]),
        "image_id": 42,
    }
    det = {
        "boxes": torch.tensor([[10.0, 10.0, 30.0, 50.0]]),
        "scores": torch.tensor([0.9]),
        "labels": torch.tensor([1]),
    }
    (result,) = task.to_coco_results([det], [target])
    assert result == {
        "image_id": 42,
        "category_id": 7,
        "bbox": [10.0, 10.0, 20.0, 40.0],
        "score": 0.9,
    }


class NaNTask(DetectionTask):
    def __init__(self, **kwargs):
        super().__init__(num_classes=1, **kwargs)
        self.layer = nn.Linear(1, 1)

    def compute_losses(self, images, targets):
        return {"loss": self.layer.weight.sum() * float("nan")}


def test_nonfinite_loss_skipped_then_stops():
    task = NaNTask(max_nonfinite_steps=3)
    task._trainer = None
    task.log = task.log_dict = lambda *a, **k: None
    batch = (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), [{}])
    assert task.training_step(batch, 0) is None
    assert task.training_step(batch, 1) is None
    with pytest.raises(NonFiniteLossError, match="3 consecutive steps"):
        task.training_step(batch, 2)


def test_backbone_weights_from_local_file(tmp_path):
    from torchvision.models import resnet18
    from torchvision.ops.misc import FrozenBatchNorm2d

    reference = resnet18()
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    model = build_faster_rcnn(2, backbone_weights=tmp_path / "resnet18.pth")
    body = model.backbone.body
    assert torch.equal(body.conv1.weight, reference.conv1.weight)
    assert isinstance(body.bn1, FrozenBatchNorm2d)
    torch.save({"not": "weights", "x": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"bad\.pth"):
        build_faster_rcnn(2, backbone_weights=tmp_path / "bad.pth")


def test_scratch_backbone_trains_its_batchnorm():
    model = build_faster_rcnn(2)
    assert isinstance(model.backbone.body.bn1, nn.BatchNorm2d)
    assert all(p.requires_grad for p in model.backbone.body.parameters())


def test_model_does_not_resize_images():
    model = build_faster_rcnn(2, returned_layers=[2, 3, 4]).eval()
    images = [torch.rand(3, 96, 160)]
    transformed, _ = model.transform(images)
    assert transformed.tensors.shape[-2:] == (96, 160)


def test_setup_rejects_class_count_mismatch():
    task = small_task()
    task._trainer = SimpleNamespace(datamodule=SimpleNamespace(categories=[{"id": 1, "name": "a"}]))
    with pytest.raises(ValueError, match="1 classes but the model was built for 2"):
        task.setup("fit")
