"""ReID network: backbones (last stride, local weights), heads, the model and the losses."""

from __future__ import annotations

import itertools
import math
import socket
import warnings

import pytest
import timm
import torch
from safetensors.torch import save_file
from torch.nn import functional as F

from neo.models.reid import (
    MEAN,
    STD,
    ArcFaceHead,
    BNNeck,
    CenterLoss,
    CosFaceHead,
    GeneralizedMeanPooling,
    LinearHead,
    ReIDModel,
    batch_hard_triplet_loss,
    build_backbone,
    normalize,
)

SIZE = (64, 32)


def images(batch: int = 4, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, *SIZE, generator=generator)


# ----------------------------------------------------------------------------- model


@pytest.mark.parametrize(
    ("pooling", "neck", "head"),
    [
        ("avg", "bnneck", "linear"),
        ("gem", "none", "arcface"),
        ("gem", "bnneck", "cosface"),
        ("avg", "none", "cosface"),
    ],
)
def test_shapes_of_every_pooling_neck_and_head(pooling, neck, head):
    torch.manual_seed(0)
    model = ReIDModel("resnet18", num_classes=5, pooling=pooling, neck=neck, head=head)
    labels = torch.tensor([0, 1, 2, 3])
    features, embeddings = model(images())
    assert model.feature_dim == 512 and model.num_classes == 5
    assert features.shape == embeddings.shape == (4, 512)
    assert (features is embeddings) == (neck == "none")
    assert model.classify(embeddings, labels).shape == (4, 5)
    model.eval()
    with torch.no_grad():
        features, embeddings = model(images(2))
        assert embeddings.shape == (2, 512)
        assert model.classify(embeddings).shape == (2, 5)
        assert torch.isfinite(embeddings).all()


def test_training_step_reaches_the_backbone():
    torch.manual_seed(0)
    model = ReIDModel("resnet18", num_classes=2, head="arcface")
    labels = torch.tensor([0, 0, 1, 1])
    features, embeddings = model(images())
    loss = F.cross_entropy(model.classify(embeddings, labels), labels, label_smoothing=0.1)
    loss = loss + batch_hard_triplet_loss(features, labels)
    loss.backward()
    gradient = model.backbone.conv1.weight.grad
    assert gradient is not None and gradient.abs().sum() > 0


def test_model_errors_are_clear():
    model = ReIDModel("resnet18", last_stride=2)
    assert model.num_classes == 0
    with pytest.raises(RuntimeError, match="num_classes"):
        model.classify(torch.zeros(2, 512))
    with pytest.raises(ValueError, match="pooling"):
        ReIDModel("resnet18", pooling="max")
    with pytest.raises(ValueError, match="head_margin"):
        ReIDModel("resnet18", num_classes=3, head_margin=0.2)
    with pytest.raises(ValueError, match="unknown timm backbone"):
        ReIDModel("no_such_net")
    with pytest.raises(ValueError, match="last_stride"):
        ReIDModel("resnet18", last_stride=3)


def test_head_margin_and_scale_reach_the_head():
    model = ReIDModel("resnet18", num_classes=3, head="cosface", head_scale=16.0, head_margin=0.2)
    assert isinstance(model.head, CosFaceHead)
    assert model.head.scale == 16.0 and model.head.margin == 0.2
    default = ReIDModel("resnet18", num_classes=3, head="arcface")
    assert default.head.margin == 0.5 and default.head.scale == 30.0


def test_normalize_uint8_images():
    batch = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    batch[:, :, 0, 0] = 255
    result = normalize(batch)
    assert result.dtype == torch.float32 and result.shape == batch.shape
    for channel in range(3):
        assert result[0, channel, 1, 1].item() == pytest.approx(-MEAN[channel] / STD[channel])
        assert result[1, channel, 0, 0].item() == pytest.approx((1 - MEAN[channel]) / STD[channel])
    with pytest.raises(TypeError, match="uint8"):
        normalize(batch.float())


# ----------------------------------------------------------------------------- backbone


@pytest.mark.parametrize("name", ["resnet18", "convnext_atto", "efficientnet_b0"])
def test_last_stride_one_doubles_the_map(name):
    torch.manual_seed(0)
    strided, channels = build_backbone(name, last_stride=2)
    unstrided, same_channels = build_backbone(name, last_stride=1)
    assert channels == same_channels
    unstrided.load_state_dict(strided.state_dict())  # same parameters, strict
    with torch.no_grad():
        small = strided.eval()(torch.randn(1, 3, 128, 64))
        large = unstrided.eval()(torch.randn(1, 3, 128, 64))
    assert small.shape == (1, channels, 4, 2)
    assert large.shape == (1, channels, 8, 4)


def test_last_stride_one_on_resnet_strides_the_last_block_by_one():
    backbone, _ = build_backbone("resnet18", last_stride=1)
    assert backbone.layer4[0].conv1.stride == (1, 1)
    assert backbone.layer4[0].downsample[0].stride == (1, 1)
    assert backbone.layer3[0].conv1.stride == (2, 2)


def test_non_feature_map_backbone_is_refused():
    with pytest.raises(ValueError, match="convolutional timm model"):
        build_backbone("vit_tiny_patch16_224")


def source_resnet18() -> torch.nn.Module:
    torch.manual_seed(1)
    source = timm.create_model("resnet18", pretrained=False, num_classes=10)
    with torch.no_grad():  # non-default running statistics, so that they must be loaded too
        for module in source.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return source.eval()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_weights_give_identical_backbone_outputs(tmp_path, suffix):
    source = source_resnet18()
    state = source.state_dict()
    assert any(key.startswith("fc.") for key in state)
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".pth":
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    torch.manual_seed(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every backbone tensor is in the file: no warning
        backbone, _ = build_backbone("resnet18", weights=path, last_stride=2)
    x = images(2)
    with torch.no_grad():
        assert torch.equal(backbone.eval()(x), source.forward_features(x))


def test_partial_weights_warn_once_with_the_count(tmp_path):
    state = source_resnet18().state_dict()
    del state["layer4.1.conv2.weight"], state["layer4.1.bn2.bias"]
    path = tmp_path / "partial.pt"
    torch.save(state, path)
    with pytest.warns(UserWarning, match=r"partial\.pt: 2 of \d+ backbone tensors") as record:
        backbone, _ = build_backbone("resnet18", weights=path)
    assert len(record) == 1
    assert torch.equal(backbone.layer4[1].conv1.weight, state["layer4.1.conv1.weight"])


def test_bad_weights_files_are_named(tmp_path):
    missing = tmp_path / "absent.pth"
    with pytest.raises(FileNotFoundError, match=r"absent\.pth"):
        build_backbone("resnet18", weights=missing)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"garbage\.pth: truncated or corrupt"):
        build_backbone("resnet18", weights=garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"encoder.weight": torch.zeros(3, 3)}, foreign)
    with pytest.raises(ValueError, match=r"foreign\.pt: none of its 1 tensors"):
        build_backbone("resnet18", weights=foreign)


def test_pretrained_false_never_uses_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(timm.models._builder, "load_pretrained", refuse)
    monkeypatch.setattr(timm.models._builder, "load_state_dict_from_hf", refuse, raising=False)
    model = ReIDModel("resnet18", num_classes=3, pretrained=False)
    assert model.feature_dim == 512


# ----------------------------------------------------------------------------- heads


def test_gem_with_p_one_is_average_pooling():
    feature_map = torch.rand(3, 8, 5, 4) + 0.01
    gem = GeneralizedMeanPooling(p=1.0)
    assert torch.allclose(gem(feature_map), feature_map.mean(dim=(2, 3)), atol=1e-6)
    cubic = GeneralizedMeanPooling(p=3.0)
    assert (cubic(feature_map) > feature_map.mean(dim=(2, 3))).all()  # p > 1 leans to the max
    assert isinstance(cubic.p, torch.nn.Parameter)
    fixed = GeneralizedMeanPooling(learnable=False)
    assert not isinstance(fixed.p, torch.nn.Parameter) and "p" in dict(fixed.named_buffers())


def test_bnneck_bias_stays_frozen_through_an_optimizer_step():
    neck = BNNeck(6)
    assert torch.equal(neck.weight, torch.ones(6)) and torch.equal(neck.bias, torch.zeros(6))
    assert not neck.bias.requires_grad and neck.weight.requires_grad
    optimizer = torch.optim.SGD(neck.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
    for _ in range(2):
        optimizer.zero_grad()
        (neck(torch.randn(8, 6)) * torch.arange(6.0)).pow(3).sum().backward()
        optimizer.step()
    assert torch.equal(neck.bias, torch.zeros(6))
    assert not torch.equal(neck.weight, torch.ones(6))


def test_linear_head_has_no_bias_and_small_weights():
    torch.manual_seed(0)
    head = LinearHead(256, 100)
    assert [name for name, _ in head.named_parameters()] == ["weight"]
    assert head.weight.std().item() == pytest.approx(0.001, rel=0.05)
    embeddings = torch.randn(3, 256)
    assert torch.equal(head(embeddings), head(embeddings, torch.tensor([0, 1, 2])))


def unit_cosines(head: torch.nn.Module, embeddings: torch.Tensor) -> torch.Tensor:
    return F.normalize(embeddings) @ F.normalize(head.weight).T


@pytest.mark.parametrize("head_class", [ArcFaceHead, CosFaceHead])
def test_margin_only_lowers_the_target_logit_when_labels_are_given(head_class):
    torch.manual_seed(0)
    head = head_class(16, 5, scale=10.0)
    embeddings = torch.randn(4, 16)
    labels = torch.tensor([0, 3, -1, 4])
    plain = head(embeddings)
    assert torch.allclose(plain, 10.0 * unit_cosines(head, embeddings), atol=1e-5)
    trained = head(embeddings, labels)
    target = torch.zeros(4, 5, dtype=torch.bool)
    target[[0, 1, 3], [0, 3, 4]] = True
    assert torch.equal(trained[~target], plain[~target])  # other classes and label -1 unchanged
    assert (trained[target] < plain[target] - 1e-3).all()
    if head_class is CosFaceHead:
        assert torch.allclose(plain[target] - trained[target], torch.full((3,), 10.0 * 0.35))


def test_arcface_adds_the_angle_and_falls_back_past_pi():
    head = ArcFaceHead(2, 1, scale=1.0, margin=0.5)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0]]))
    angles = torch.tensor([0.3, 2.0, 3.0])  # the last one is past pi - m
    embeddings = torch.stack([angles.cos(), angles.sin()], dim=1)
    logits = head(embeddings, torch.zeros(3, dtype=torch.long))[:, 0]
    assert logits[0].item() == pytest.approx(math.cos(0.8), abs=1e-5)
    assert logits[1].item() == pytest.approx(math.cos(2.5), abs=1e-5)
    assert logits[2].item() == pytest.approx(math.cos(3.0) - 0.5 * math.sin(0.5), abs=1e-5)


# ----------------------------------------------------------------------------- losses


def test_triplet_loss_is_zero_when_identities_are_far_apart():
    features = torch.tensor([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [10.1, 0.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    loss = batch_hard_triplet_loss(features, labels, margin=0.3)
    assert loss.item() == 0.0
    loss.backward()
    assert features.grad is not None


def test_triplet_loss_of_a_hard_case_and_its_gradient():
    # anchor 0: positive at distance 3, nearest negative at distance 1
    features = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 5.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    loss = batch_hard_triplet_loss(features, labels, margin=0.3)
    # anchor 0: 3 - 1 + .3; anchor 1: 3 - sqrt(10) + .3 (> 0); anchor 2: 4 - 1 + .3;
    # anchor 3: 4 - 5 + .3 -> 0
    expected = ((3 - 1 + 0.3) + (3 - math.sqrt(10) + 0.3) + (4 - 1 + 0.3) + 0.0) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert features.grad.abs().sum() > 0
    soft = batch_hard_triplet_loss(features.detach(), labels, margin=None)
    assert soft.item() > 0


def test_triplet_loss_leaves_out_anchors_without_positive_or_negative():
    features = torch.randn(3, 4, requires_grad=True)
    lonely = batch_hard_triplet_loss(features, torch.tensor([0, 1, 2]))
    assert lonely.item() == 0.0
    lonely.backward()  # still part of the graph
    assert features.grad is not None
    one_identity = batch_hard_triplet_loss(features, torch.tensor([4, 4, 4]))
    assert one_identity.item() == 0.0
    # unknown boxes (-1) are never positives of one another, only negatives
    unknowns = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 0.0], [0.0, 0.2]])
    assert batch_hard_triplet_loss(unknowns, torch.tensor([-1, -1, 2, 2])).item() > 0
    assert batch_hard_triplet_loss(unknowns[:2], torch.tensor([-1, -1])).item() == 0.0


def test_triplet_loss_normalize_ignores_the_scale():
    features = torch.randn(6, 8)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    one = batch_hard_triplet_loss(features, labels, normalize=True)
    ten = batch_hard_triplet_loss(10 * features, labels, normalize=True)
    assert one.item() == pytest.approx(ten.item(), rel=1e-5)


def test_center_loss_value_gradient_and_paper_update():
    center_loss = CenterLoss(num_classes=3, dim=2, alpha=0.5)
    features = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]], requires_grad=True)
    labels = torch.tensor([1, 1, 2])
    loss = center_loss(features, labels)
    assert loss.item() == pytest.approx(0.5 * (1 + 9 + 4) / 3)
    loss.backward()
    assert torch.allclose(features.grad, features.detach() / 3)
    # c_1 = 0 - 0.5 * ((0 - f0) + (0 - f1)) / (1 + 2); c_2 = 0 - 0.5 * (0 - f2) / 2
    expected = torch.tensor([[0.0, 0.0], [0.5 * 4 / 3, 0.0], [0.0, 0.5]])
    assert torch.allclose(center_loss.centers, expected)
    center_loss.eval()
    center_loss(features.detach(), labels)
    assert torch.allclose(center_loss.centers, expected)  # no update in eval mode


def test_center_loss_decreases_as_centers_follow_the_features():
    torch.manual_seed(0)
    center_loss = CenterLoss(num_classes=2, dim=4)
    features = torch.randn(6, 4) + torch.tensor([5.0, 0, 0, 0])
    labels = torch.tensor([0, 0, 0, 1, 1, -1])
    losses = [center_loss(features, labels).item() for _ in range(5)]
    assert all(later < earlier for earlier, later in itertools.pairwise(losses))
    assert torch.allclose(center_loss.centers[0], features[:3].mean(0), atol=0.5)
    with pytest.raises(ValueError, match="num_classes"):
        center_loss(features[:1], torch.tensor([2]))
