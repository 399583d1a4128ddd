"""Detection metrics."""

from neo.metrics.coco import COCO_STAT_NAMES, CocoEvaluator, evaluate_coco, merge_rank_results

__all__ = ["COCO_STAT_NAMES", "CocoEvaluator", "evaluate_coco", "merge_rank_results"]
