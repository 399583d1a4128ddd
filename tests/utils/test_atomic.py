"""Atomic writes: a failure leaves the previous file intact and no temporary file behind."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from neo.utils.atomic import atomic_path, remove_stale_temporaries, write_json
from neo.utils.checkpoint_io import AtomicCheckpointIO, CheckpointError, read_checkpoint


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
    with pytest.raises(CheckpointError, match=r"evil\.ckpt: not a safe checkpoint") as error:
        AtomicCheckpointIO().load_checkpoint(tmp_path / "evil.ckpt")
    assert "weights_only" not in str(error.value)  # never advise unpickling it anyway
    with pytest.raises(CheckpointError, match=r"missing\.ckpt: checkpoint file not found"):
        AtomicCheckpointIO().load_checkpoint(tmp_path / "missing.ckpt")


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_written_files_respect_the_umask(tmp_path, umask):
    # mkstemp creates 0600 files: others in the group could not read checkpoints or predictions
    old = os.umask(umask)
    try:
        AtomicCheckpointIO().save_checkpoint({"w": torch.ones(1)}, tmp_path / "model.ckpt")
        write_json(tmp_path / "predictions.json", [])
    finally:
        os.umask(old)
    for name in ("model.ckpt", "predictions.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask


def test_stale_temporaries_of_a_killed_save_are_removed(tmp_path):
    stale = tmp_path / ".last.ckpt.k2j4h1.tmp"
    stale.write_bytes(b"")
    keep = [tmp_path / "last.ckpt", tmp_path / ".notes.txt", tmp_path / ".pred.json.x1.tmp"]
    for path in keep:
        path.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path, ".ckpt") == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in keep)
    assert remove_stale_temporaries(tmp_path / "absent") == []


def test_generated_dataset_folders_respect_the_umask(tmp_path):
    from neo.data.synth import synth

    # mkdtemp makes 0700 staging folders: a generated dataset was private once renamed into place
    old = os.umask(0o002)
    try:
        synth(tmp_path / "shapes", num_train=1, num_val=1, height=32, width=64)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "shapes").stat().st_mode) == 0o775


SAVE_FOREVER = """
import sys, time, torch
from pathlib import Path
from neo.utils.checkpoint_io import AtomicCheckpointIO

io, path = AtomicCheckpointIO(), Path(sys.argv[1])
io.save_checkpoint({"state_dict": {"w": torch.zeros(4)}, "step": 1}, path)
original = torch.save

def slow_save(obj, f, *args, **kwargs):  # half a file on disk, then the process is killed
    with open(f, "wb") as out:
        out.write(b"PK\\x03\\x04" + bytes(1 << 20))
        out.flush()
    Path(str(path) + ".writing").touch()
    time.sleep(600)

torch.save = slow_save
io.save_checkpoint({"state_dict": {"w": torch.ones(4)}, "step": 2}, path)
"""


def test_a_kill_while_saving_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "last.ckpt"
    process = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(path)])
    deadline = time.monotonic() + 120
    while not Path(str(path) + ".writing").exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert list(tmp_path.glob(".last.ckpt.*.tmp"))  # the half-written file is a temporary one
    checkpoint = read_checkpoint(path)
    assert checkpoint["step"] == 1 and torch.equal(checkpoint["state_dict"]["w"], torch.zeros(4))
