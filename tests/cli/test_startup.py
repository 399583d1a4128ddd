"""Start-up stays light: models, tasks and data modules load only when a verb needs them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL_CODE = r"neo\.(models|tasks|metrics|inference)(\.|$)|neo\.data\.(\w*datamodule|demo)$"
# one interpreter (importing Lightning takes seconds): the modules after each step, one line each
SCRIPT = """
import contextlib, io, sys
def neo_modules():
    print(" ".join(m for m in sys.modules if m.startswith("neo")))
import neo.cli
neo_modules()
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    neo.cli.main(["data", "synth", "--help"])
neo_modules()
"""


def test_import_and_tool_help_load_no_model_task_or_data_module():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, cwd=ROOT
    )
    after_import, after_help = (line.split() for line in proc.stdout.splitlines()[-2:])
    assert "neo.cli" in after_import
    assert [m for m in after_import if re.match(f"{MODEL_CODE}|neo\\.rf(\\.|$)", m)] == []
    assert "neo.data.synth" in after_help  # the verb's own module, for its options
    assert [m for m in after_help if re.match(MODEL_CODE, m)] == []
