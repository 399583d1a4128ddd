"""One box of a re-identification dataset: where it is, whose it is, and which split it is in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# kinds of box: a labelled or unlabelled person, or a negative made by ``neo data negatives``
PLAYER = "player"
BACKGROUND = "background"
PARTIAL = "partial"
KINDS = (PLAYER, BACKGROUND, PARTIAL)
UNKNOWN = -1
# the evaluation sets of a ReID data module, by validation dataloader index
QUERY, GALLERY = 0, 1


@dataclass(frozen=True, slots=True)
class BoxRecord:
    """A box of a meta CSV row (or a generated negative) in one full frame.

    Attributes:
        frame_path: path of the full frame the box is in.
        x: left edge in pixels.
        y: top edge in pixels.
        w: width in pixels.
        h: height in pixels.
        label: identity (``label_id``); -1 for unlabelled boxes, unknown identities, negatives.
        quarter: game quarter (a grouping key).
        angle: camera angle (the camera id of the retrieval protocol by default).
        session: session number within the quarter.
        frame: frame number within the session.
        row: 0-based data row in the CSV the box came from, -1 when it has none.
        kind: ``player``, ``background`` or ``partial``.
        split: ``train`` or ``val`` once a split assigned it, else empty.
        crop_path: path of the pre-cropped image once written, else empty.
    """

    frame_path: str
    x: int
    y: int
    w: int
    h: int
    label: int = UNKNOWN
    quarter: str = ""
    angle: str = ""
    session: int = 0
    frame: int = 0
    row: int = -1
    kind: str = PLAYER
    split: str = ""
    crop_path: str = ""

    def field(self, name: str) -> str:
        """The value of a meta column (``quarter``, ``angle``, ``session``, ``frame``) as text."""
        return str(getattr(self, name))

    def group(self, columns: Sequence[str] = ("quarter", "session")) -> str:
        """The group this box belongs to (boxes of one group never straddle train and val)."""
        return "/".join(self.field(c) for c in columns)
