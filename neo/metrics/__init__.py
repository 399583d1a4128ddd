"""Detection metrics."""

from neo.utils.lazy import lazy_exports

__all__ = ["COCO_STAT_NAMES", "CocoEvaluator", "evaluate_coco", "merge_rank_results"]
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, "neo.metrics.coco"))
