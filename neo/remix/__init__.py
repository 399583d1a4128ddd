"""Remix: detectors of several sizes over a non-uniform partition of a high-resolution view.

Size bins, the ``profiles.json``/``plans.json`` files, the detector interface, the profiler,
the scene's object distribution, the recursive planner, the adaptive runtime and
:class:`RemixSystem` that holds them together.
"""

from neo.utils.lazy import lazy_exports

__all__ = [
    "AREA_EDGES",
    "BIN_NAMES",
    "NUM_BINS",
    "Block",
    "CallableDetector",
    "DeployedDetector",
    "Detector",
    "NNProfiler",
    "ObjectDistribution",
    "Plan",
    "Profile",
    "RemixRuntime",
    "RemixSystem",
    "check_tiling",
    "from_coco",
    "load_plans",
    "load_profiles",
    "plan",
    "save_plans",
    "save_profiles",
    "size_bins",
    "size_histogram",
    "update_profile",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AREA_EDGES": "neo.remix.bins",
        "BIN_NAMES": "neo.remix.bins",
        "NUM_BINS": "neo.remix.bins",
        "size_bins": "neo.remix.bins",
        "size_histogram": "neo.remix.bins",
        "Block": "neo.remix.files",
        "Plan": "neo.remix.files",
        "Profile": "neo.remix.files",
        "check_tiling": "neo.remix.files",
        "load_plans": "neo.remix.files",
        "load_profiles": "neo.remix.files",
        "save_plans": "neo.remix.files",
        "save_profiles": "neo.remix.files",
        "update_profile": "neo.remix.files",
        "ObjectDistribution": "neo.remix.distribution",
        "from_coco": "neo.remix.distribution",
        "plan": "neo.remix.planner",
        "CallableDetector": "neo.remix.detector",
        "DeployedDetector": "neo.remix.detector",
        "Detector": "neo.remix.detector",
        "NNProfiler": "neo.remix.profiler",
        "RemixRuntime": "neo.remix.runtime",
        "RemixSystem": "neo.remix.system",
    },
)
