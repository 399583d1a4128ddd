"""SigMF recordings written by hand, so that broken ones can be made too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_recording(
    folder: Path,
    name: str,
    data: bytes | np.ndarray,
    datatype: str = "cf32_le",
    sample_rate: float | None = 1000.0,
    annotations: list[dict] | None = None,
    captures: list[dict] | None = None,
    write_data: bool = True,
    **global_fields,
) -> Path:
    """Write a SigMF pair by hand (so that broken recordings can be made too)."""
    glob = {"core:datatype": datatype, "core:version": "1.2.0", **global_fields}
    if sample_rate is not None:
        glob["core:sample_rate"] = sample_rate
    meta = {
        "global": glob,
        "captures": captures
        if captures is not None
        else [{"core:sample_start": 0, "core:frequency": 0.0}],
        "annotations": annotations or [],
    }
    meta_path = folder / f"{name}.sigmf-meta"
    meta_path.write_text(json.dumps(meta))
    if write_data:
        raw = data.tobytes() if isinstance(data, np.ndarray) else data
        (folder / f"{name}.sigmf-data").write_bytes(raw)
    return meta_path
