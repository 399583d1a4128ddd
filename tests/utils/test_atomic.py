"""Atomic writes: a failure leaves the previous file intact and no temporary file behind."""

from __future__ import annotations

import pytest
import torch

from neo.utils.atomic import atomic_path
from neo.utils.checkpoint_io import AtomicCheckpointIO


def test_failed_write_keeps_old_file(tmp_path):
    target = tmp_path / "model.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"w": torch.ones(2)}, target)
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("crash while writing")
    assert torch.equal(io.load_checkpoint(target)["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["model.ckpt"]


class Evil:
    pass


def test_load_refuses_pickled_objects(tmp_path):
    torch.save({"obj": Evil()}, tmp_path / "evil.ckpt")
    with pytest.raises(Exception, match=r"[Ww]eights only"):
        AtomicCheckpointIO().load_checkpoint(tmp_path / "evil.ckpt")
    with pytest.raises(FileNotFoundError, match=r"missing\.ckpt"):
        AtomicCheckpointIO().load_checkpoint(tmp_path / "missing.ckpt")
