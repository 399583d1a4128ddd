"""The inference contract (forward / detect), the inference spec and the shared arguments."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from neo.inference.spec import SPEC_KEY, InferenceSpec
from neo.tasks import FasterRCNNTask, RTDETRTask
from neo.tasks.detection import NONFINITE_KEY
from neo.utils.random_state import RANDOM_STATE_KEY
from tests.helpers.training import TINY_RTDETR


def faster_rcnn(**kwargs) -> FasterRCNNTask:
    torch.manual_seed(0)
    kwargs = {"rpn_proposals_test": 20, **kwargs}
    return FasterRCNNTask(
        num_classes=2, returned_layers=[3, 4], anchor_sizes=[[16], [32], [64]], **kwargs
    )


def test_faster_rcnn_forward_pads_rows_with_score_0_and_label_minus_1():
    # 5 proposals x 2 classes: at most 10 detections, so at least 20 padding rows
    task = faster_rcnn(detections_per_image=30, score_threshold=0.0, rpn_proposals_test=5)
    task.train()
    images = torch.randint(0, 256, (2, 3, 70, 100), dtype=torch.uint8)
    boxes, scores, labels = task(images)
    assert task.training and task.model.training  # the modes are restored
    assert boxes.shape == (2, 30, 4) and scores.shape == labels.shape == (2, 30)
    assert labels.dtype == torch.int64 and boxes.dtype == scores.dtype == torch.float32
    padding = labels < 0
    assert padding.sum(dim=1).min() >= 20 and (~padding).any()
    assert (labels[padding] == -1).all() and (scores[padding] == 0).all()
    assert (boxes[padding] == 0).all() and (scores[~padding] > 0).all()
    assert labels[~padding].max() < 2
    # detect is forward without the padding rows; float input in [0, 1] is the same image
    detections = task.detect(images.float() / 255)
    for i, det in enumerate(detections):
        keep = ~padding[i]
        assert torch.equal(det["boxes"], boxes[i][keep])
        assert torch.equal(det["labels"], labels[i][keep])


def test_rtdetr_forward_returns_every_top_query_in_input_pixels():
    torch.manual_seed(0)
    task = RTDETRTask(3, **TINY_RTDETR)
    boxes, scores, labels = task(torch.randint(0, 256, (1, 3, 90, 160), dtype=torch.uint8))
    assert boxes.shape == (1, 25, 4) and (labels >= 0).all() and (labels < 3).all()
    assert torch.all(scores[:, :-1] >= scores[:, 1:])  # sorted by score
    with pytest.raises(ValueError, match=r"shape \(B, 3, H, W\)"):
        task(torch.zeros(3, 64, 64, dtype=torch.uint8))


def test_spec_defaults_without_data_then_filled_by_the_data_module():
    task = faster_rcnn()
    assert task.inference_spec.task_class == "neo.tasks.faster_rcnn.FasterRCNNTask"
    assert task.category_ids == [1, 2] and task.class_names == ["1", "2"]
    assert task.inference_spec.input_size is None
    datamodule = SimpleNamespace(
        categories=[{"id": 3, "name": "car"}, {"id": 7, "name": "bus"}],
        inference_preprocessing=lambda: {
            "input_size": (1088, 1920),
            "resize": "letterbox",
            "spectrogram": None,
        },
    )
    task._trainer = SimpleNamespace(datamodule=datamodule)
    task.setup("fit")
    spec = task.inference_spec
    assert (spec.category_ids, spec.class_names) == ([3, 7], ["car", "bus"])
    assert (spec.input_size, spec.resize, spec.size_divisor) == ((1088, 1920), "letterbox", 32)


def test_spec_is_saved_once_and_restored():
    task = faster_rcnn()
    task.inference_spec = InferenceSpec(
        "x",
        [4, 9],
        ["tone", "chirp"],
        (64, 64),
        "stretch",
        spectrogram={"nfft": 128, "hop": 64, "image_size": 64, "chunk_duration_s": 0.1},
    )
    checkpoint: dict = {}
    task._nonfinite_in_a_row = 3  # a run saved after three skipped steps
    task.on_save_checkpoint(checkpoint)
    # class names are saved in one place only, beside the training state
    assert set(checkpoint) == {SPEC_KEY, NONFINITE_KEY, RANDOM_STATE_KEY}
    saved = checkpoint[SPEC_KEY]
    assert saved["task_class"] == "neo.tasks.faster_rcnn.FasterRCNNTask"  # the real class
    assert saved["input_size"] == [64, 64] and saved["spectrogram"]["chunk_duration_s"] == 0.1
    other = faster_rcnn()
    other.on_load_checkpoint(checkpoint)
    assert other._nonfinite_in_a_row == 3  # resumes counting towards max_nonfinite_steps
    assert other.category_ids == [4, 9] and other.class_names == ["tone", "chirp"]
    assert other.inference_spec.input_size == (64, 64)
    checkpoint[SPEC_KEY]["class_names"] = ["a", "b", "c"]
    checkpoint[SPEC_KEY]["category_ids"] = [1, 2, 3]
    with pytest.raises(ValueError, match="3 classes but the model was built for 2"):
        other.on_load_checkpoint(checkpoint)


def test_spec_rejects_bad_values():
    with pytest.raises(ValueError, match="2 category ids but 1 class names"):
        InferenceSpec("t", [1, 2], ["a"])
    with pytest.raises(ValueError, match="resize must be one of"):
        InferenceSpec("t", [1], ["a"], resize="crop")
    with pytest.raises(ValueError, match="missing task_class"):
        InferenceSpec.from_dict({"category_ids": [1], "class_names": ["a"]})
    spec = InferenceSpec("t", [1], ["a"], (32, 64), "stretch", spectrogram={"nfft": 8})
    assert InferenceSpec.from_dict(spec.to_dict()) == spec


def test_configure_optimizers_reads_self_lr():
    task = faster_rcnn(lr=1e-3, backbone_lr=None)
    task.lr = 0.05  # what AutoTune does
    task.steps_per_epoch = lambda: 10
    optimizer = task.configure_optimizers()["optimizer"]
    assert {g["lr"] for g in optimizer.param_groups} == {0.05}


@pytest.mark.parametrize("task_class", [FasterRCNNTask, RTDETRTask])
def test_shared_arguments_are_declared_once_and_still_recorded(task_class):
    import inspect

    from jsonargparse import ArgumentParser

    params = inspect.signature(task_class.__init__).parameters
    assert "lr" not in params and "kwargs" in params
    parser = ArgumentParser()
    parser.add_class_arguments(task_class, "model")
    help_text = parser.format_help()
    for name, doc in [("lr", "AdamW learning rate"), ("max_nonfinite_steps", "consecutive")]:
        assert f"--model.{name}" in help_text and doc in help_text
    kwargs = dict(TINY_RTDETR) if task_class is RTDETRTask else {"returned_layers": [3, 4]}
    task = task_class(2, lr=3e-3, milestones=[5], **kwargs)
    assert task.hparams.lr == 3e-3 and task.hparams.milestones == [5]
    assert task.hparams.gamma == 0.1 and task.hparams.num_classes == 2
    assert task.lr == 3e-3
