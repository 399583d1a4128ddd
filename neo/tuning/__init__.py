"""Hyper-parameter heuristics."""

# Imported eagerly: the module is tiny, and a lazy export named like its submodule would be
# replaced by the submodule once ``neo.tuning.auto_tune`` is imported.
from neo.tuning.auto_tune import HEURISTICS, auto_tune

__all__ = ["HEURISTICS", "auto_tune"]
