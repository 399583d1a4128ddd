"""load_detector: one safe loader for every trained detector, driven by the inference spec."""

from __future__ import annotations

import pytest
import torch
from lightning import Trainer

from neo.data import SpectrogramDataModule
from neo.inference.loading import load_detector, task_class_from_path
from neo.inference.spec import SPEC_KEY
from neo.tasks import FasterRCNNTask, RTDETRTask
from neo.utils.checkpoint_io import CheckpointError
from tests.helpers.spectrograms import write_dataset


class SiteSpectrograms(SpectrogramDataModule):
    """A user's subclass: its spectrogram settings must still reach the checkpoint."""


def test_a_trained_checkpoint_loads_with_its_spec(tmp_path):
    write_dataset(tmp_path / "data", recordings=4, chunks=1, size=64)
    data = SiteSpectrograms(
        roots=[tmp_path / "data"], image_size=64, num_folds=0, test_fraction=0.0,
        val_fraction=0.25, batch_size=2, num_workers=0,
    )
    torch.manual_seed(0)
    task = FasterRCNNTask(
        data.num_classes, returned_layers=[3, 4], anchor_sizes=[[16], [32], [64]],
        rpn_proposals_train=20, rpn_proposals_test=10, box_batch_size_per_image=8,
        detections_per_image=7,
    )
    trainer = Trainer(
        accelerator="cpu", max_steps=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(task, datamodule=data)
    trainer.save_checkpoint(tmp_path / "model.ckpt")

    loaded = load_detector(tmp_path / "model.ckpt")
    spec = loaded.spec
    assert spec.task_class == "neo.tasks.faster_rcnn.FasterRCNNTask"
    assert (spec.class_names, spec.category_ids) == (["a", "b"], [1, 2])
    assert (spec.input_size, spec.resize) == ((64, 64), "stretch")
    assert spec.spectrogram == {"nfft": 64, "hop": 32, "image_size": 64}
    assert loaded.name == "model" and not loaded.task.training
    image = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    expected = task(image)
    for got, want in zip(loaded.task(image), expected):
        assert torch.equal(got, want)
    assert expected[0].shape == (1, 7, 4)


def test_task_class_must_be_a_neo_detection_task():
    assert task_class_from_path("neo.tasks.RTDETRTask", "x.ckpt") is RTDETRTask
    for bad in ("os.system", "neo.data.SpectrogramDataModule", "neo.tasks.Missing", "neo.nope.X"):
        with pytest.raises(CheckpointError, match=f"x.ckpt: task class '{bad}' is not a neo"):
            task_class_from_path(bad, "x.ckpt")


def tiny_rtdetr(path, **kwargs):
    torch.manual_seed(0)
    task = RTDETRTask(
        2, variant="r18", num_queries=10, num_top_queries=10, hidden_dim=32, nhead=4,
        num_decoder_layers=1, decoder_ffn_dim=64, encoder_ffn_dim=64, num_denoising=0,
        **kwargs,
    )
    checkpoint = {"state_dict": task.state_dict(), "hyper_parameters": dict(task.hparams)}
    task.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return task, checkpoint


def test_starting_weights_are_not_fetched_again(tmp_path):
    _, checkpoint = tiny_rtdetr(tmp_path / "model.ckpt")
    checkpoint["hyper_parameters"]["pretrained_checkpoint"] = str(tmp_path / "gone.pth")
    torch.save(checkpoint, tmp_path / "model.ckpt")
    loaded = load_detector(tmp_path / "model.ckpt")
    assert isinstance(loaded.task, RTDETRTask)


def test_broken_checkpoints_are_one_line_errors(tmp_path):
    _, checkpoint = tiny_rtdetr(tmp_path / "model.ckpt")
    checkpoint["hyper_parameters"]["hidden_dim"] = 64
    torch.save(checkpoint, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match=r"other\.ckpt: does not fit neo\.tasks\.rtdetr"):
        load_detector(tmp_path / "other.ckpt")
    checkpoint[SPEC_KEY]["class_names"] = ["a"]
    torch.save(checkpoint, tmp_path / "spec.ckpt")
    with pytest.raises(CheckpointError, match=r"spec\.ckpt: inference spec: 2 category ids"):
        load_detector(tmp_path / "spec.ckpt")
    with pytest.raises(CheckpointError, match="checkpoint file not found"):
        load_detector(tmp_path / "missing.ckpt")


def test_a_model_started_from_local_backbone_weights_loads_without_them(tmp_path):
    from torchvision.models import resnet18
    from torchvision.ops.misc import FrozenBatchNorm2d

    from neo.inference.spec import InferenceSpec
    from neo.utils.checkpoint_io import AtomicCheckpointIO

    torch.save(resnet18().state_dict(), tmp_path / "resnet18.pth")
    torch.manual_seed(0)
    task = FasterRCNNTask(
        2, backbone_weights=tmp_path / "resnet18.pth", returned_layers=[3, 4],
        anchor_sizes=[[16], [32], [64]], rpn_proposals_test=10, detections_per_image=5,
    )
    task.inference_spec = InferenceSpec(task.class_path(), [1, 2], ["a", "b"], (64, 64))
    checkpoint = {
        "state_dict": task.state_dict(),
        "hyper_parameters": dict(task.hparams),
    }
    task.on_save_checkpoint(checkpoint)
    # as the trainer writes it: the Path-typed backbone_weights must not make the file unsafe
    AtomicCheckpointIO().save_checkpoint(checkpoint, tmp_path / "model.ckpt")
    (tmp_path / "resnet18.pth").unlink()  # the deployed machine has only the checkpoint

    loaded = load_detector(tmp_path / "model.ckpt").task
    assert isinstance(loaded.model.backbone.body.bn1, FrozenBatchNorm2d)
    image = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    for got, want in zip(loaded(image), task(image)):
        assert torch.equal(got, want)
