"""The built-in ReID demo: synthetic players generated on first use, with negatives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neo.data.demo import default_cache_dir
from neo.data.reid.datamodule import ReIDDataModule
from neo.data.reid.negatives import negatives as write_negatives
from neo.data.reid.synth import synth_reid

NEGATIVES_FILE = "train_negatives.csv"


class DemoReIDDataModule(ReIDDataModule):
    """:class:`ReIDDataModule` over ``neo data synth-reid`` players, made in a cache folder.

    The frames, the meta CSV and the negatives CSV (one background and one partial crop per
    frame and box) are generated once, deterministically; nothing is downloaded.

    Args:
        root: where the data goes (default: ``<cache>/demo-reid-<settings>``).
        num_identities: roster players (labelled identities).
        num_guests: referees and guests, unlabelled (always unknown).
        quarters: game quarters.
        sessions: sessions per quarter.
        frames_per_session: frames per session and angle.
        frame_height: frame height in pixels.
        frame_width: frame width in pixels.
        seed: generator seed.
        **kwargs: the other arguments of :class:`ReIDDataModule` (the meta, frame and negatives
            paths are fixed).
    """

    def __init__(
        self,
        root: Path | None = None,
        num_identities: int = 20,
        num_guests: int = 4,
        quarters: int = 4,
        sessions: int = 3,
        frames_per_session: int = 6,
        frame_height: int = 360,
        frame_width: int = 640,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        if root is None:
            root = default_cache_dir() / (
                f"demo-reid-{num_identities}-{num_guests}-q{quarters}-s{sessions}-"
                f"f{frames_per_session}-{frame_height}x{frame_width}-seed{seed}"
            )
        root = Path(root)
        synth_reid(
            root,
            num_identities=num_identities,
            num_guests=num_guests,
            quarters=quarters,
            sessions=sessions,
            frames_per_session=frames_per_session,
            height=frame_height,
            width=frame_width,
            seed=seed,
        )
        meta = root / "train_meta.csv"
        if not (root / NEGATIVES_FILE).is_file():
            write_negatives(meta, root / "images", root / NEGATIVES_FILE, seed=seed)
        super().__init__(
            meta=meta,
            img_root=root / "images",
            crop_dir=root / "crops",
            negatives=root / NEGATIVES_FILE,
            **kwargs,
        )
