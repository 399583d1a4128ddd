"""A non-finite loss on one DDP rank is skipped by every rank instead of killing the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Lightning's DDP launcher re-runs this script for rank 1, so it is a file of its own.
SCRIPT = '''
import json, sys
import torch
from lightning import Trainer
from torch import nn
from torch.utils.data import DataLoader
from neo.tasks.detection import DetectionTask


class OneRankNaN(DetectionTask):
    """A linear "detector" whose loss is NaN on rank 1 at step 1 only."""

    def __init__(self):
        super().__init__(num_classes=1, weight_decay=0.0)
        self.layer = nn.Linear(3, 1)
        self.record = []

    def compute_losses(self, images, targets):
        loss = self.layer(images.mean(dim=(2, 3))).pow(2).mean()
        if self.global_rank == 1 and self.global_step == 1:
            loss = loss * float("nan")
        return {"loss_mse": loss}

    def on_before_optimizer_step(self, optimizer):
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        zero = bool(grads) and all(g.eq(0).all() for g in grads)
        self.record.append({"step": self.global_step, "zero_grad": zero,
                            "in_a_row": self._nonfinite_in_a_row})


def collate(items):
    return torch.stack(items), [{} for _ in items]


images = [torch.full((3, 8, 8), 10 * i, dtype=torch.uint8) for i in range(8)]
task = OneRankNaN()
trainer = Trainer(accelerator="cpu", devices=2, strategy="ddp", max_steps=3, logger=False,
                  enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False, default_root_dir=sys.argv[1])
trainer.fit(task, DataLoader(images, batch_size=1, collate_fn=collate))
params = [p.detach().tolist() for p in task.parameters()]
out = {"record": task.record, "params": params, "steps": trainer.global_step}
with open(f"{sys.argv[1]}/rank{trainer.global_rank}.json", "w") as f:
    json.dump(out, f)
'''


def test_nan_on_one_rank_is_skipped_by_both(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "non-finite loss at step 1" in proc.stderr
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for result in ranks:
        assert result["steps"] == 3
        assert [r["step"] for r in result["record"]] == [0, 1, 2]
        # the bad step: zero gradients on both ranks, counted on both; the next step resets it
        assert [r["zero_grad"] for r in result["record"]] == [False, True, False]
        assert [r["in_a_row"] for r in result["record"]] == [0, 1, 0]
    assert ranks[0]["params"] == ranks[1]["params"]
