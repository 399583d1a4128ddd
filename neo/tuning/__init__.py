"""Hyper-parameter heuristics."""

from neo.tuning.auto_tune import HEURISTICS, auto_tune

__all__ = ["HEURISTICS", "auto_tune"]
