"""Synthetic player re-identification demo data: basketball frames and a meta CSV of boxes.

Layout written under ``out``:

- ``images/{quarter}__{angle}__{session:02d}__{frame:02d}.jpg`` (quarters ``Q1``.., sessions and
  frames counted from 1), one frame per quarter, session, frame and camera angle;
- ``train_meta.csv`` with columns ``quarter,angle,session,frame,x,y,w,h,label_id``, one row per
  visible person; the box is the person's full extent (head to shoes) in pixels;
- ``.complete``, written last, holding the generation parameters.

People: ``num_identities`` roster players in two teams (one jersey colour per team, so players
of a team are told apart by their number, skin, hair, shorts shade, shoes and body shape; any
two of a team differ in the number and at least two more of these) and ``num_guests`` unlabelled
people (``label_id`` -1): referees in striped shirts and substitutes of a third team. The
roster rotates between sessions, people move smoothly within a session, and every moment is
seen by every camera angle: ``side`` (large people, a view of the stands) and ``top`` (small,
foreshortened people), each with its own colour cast and blur. In each session one player runs
out of the picture, so about 2 % of the boxes extend past the frame border.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from neo.data.generated import generate_once
from neo.data.reid.records import UNKNOWN

FORMAT_VERSION = 1
META_FILE = "train_meta.csv"
IMAGES_FOLDER = "images"
META_COLUMNS = ("quarter", "angle", "session", "frame", "x", "y", "w", "h", "label_id")
FRAME_PATTERN = "{quarter}__{angle}__{session:02d}__{frame:02d}.jpg"
JPEG_QUALITY = 95

Colour = tuple[int, int, int]  # BGR

SKIN_TONES: tuple[Colour, ...] = (
    (189, 224, 255),
    (140, 190, 235),
    (100, 150, 205),
    (65, 105, 160),
    (40, 60, 95),
)
HAIR_COLOURS: tuple[Colour, ...] = (
    (15, 15, 15),
    (30, 65, 110),
    (100, 200, 235),
    (40, 75, 180),
    (185, 185, 185),
)
SHOE_COLOURS: tuple[Colour, ...] = (
    (245, 245, 245),
    (25, 25, 25),
    (40, 40, 225),
    (0, 215, 255),
    (235, 150, 30),
    (60, 225, 110),
)
SHORTS_SHADES = (-0.55, 0.0, 0.55)  # < 0 towards black, > 0 towards white
HEIGHT_FACTORS = (0.9, 1.0, 1.1)
WIDTH_FACTORS = (0.84, 1.0, 1.2)
# (jersey, shorts, number) of the two roster teams and of the guest team
TEAM_COLOURS: tuple[tuple[Colour, Colour, Colour], ...] = (
    ((185, 90, 25), (150, 65, 20), (250, 250, 250)),
    ((45, 45, 200), (35, 35, 150), (250, 250, 250)),
    ((60, 150, 50), (40, 110, 35), (0, 230, 255)),
)
REFEREE_COLOURS: tuple[Colour, Colour] = ((215, 215, 215), (20, 20, 20))  # shirt, stripes/trousers
LINE_COLOUR: Colour = (235, 235, 235)
_STREAM = {"roster": 0, "schedule": 1, "tracks": 2, "background": 3, "grain": 4}


@dataclass(frozen=True)
class Person:
    """How one person looks, the same in every frame and from every angle.

    Attributes:
        label: identity (``label_id``), -1 for referees and guests.
        referee: whether the shirt is striped and the trousers long.
        jersey: shirt colour.
        number: jersey number as drawn ("" for referees).
        number_colour: colour of the number.
        skin: skin tone.
        hair: hair colour.
        shorts: shorts (or trousers) colour.
        shoes: shoe colour.
        height_factor: body height relative to the average.
        width_factor: body width relative to the average.
    """

    label: int
    referee: bool
    jersey: Colour
    number: str
    number_colour: Colour
    skin: Colour
    hair: Colour
    shorts: Colour
    shoes: Colour
    height_factor: float
    width_factor: float


@dataclass(frozen=True)
class View:
    """One camera angle: where the court and the people appear, and how the camera renders.

    Court coordinates ``u`` (along the court) and ``v`` (far sideline 0, near sideline 1) are in
    [0, 1]; image positions are fractions of the frame width (x) and height (y).

    Attributes:
        horizon: top of the floor; above it are the stands.
        feet_far: y of the feet on the far sideline.
        feet_near: y of the feet on the near sideline.
        span_far: width of the court on the far sideline.
        span_near: width of the court on the near sideline.
        height_far: person height (of the frame height) on the far sideline.
        height_near: person height on the near sideline.
        aspect: person width over height (larger when foreshortened).
        head: head height as a fraction of the person height.
        torso: top and bottom of the shirt (fractions of the person height).
        shorts_bottom: bottom of the shorts.
        shoes_top: top of the shoes.
        floor: floor colour.
        gain: per-channel colour cast (B, G, R).
        offset: brightness offset.
        blur: Gaussian blur sigma in pixels.
    """

    horizon: float
    feet_far: float
    feet_near: float
    span_far: float
    span_near: float
    height_far: float
    height_near: float
    aspect: float
    head: float
    torso: tuple[float, float]
    shorts_bottom: float
    shoes_top: float
    floor: Colour
    gain: tuple[float, float, float]
    offset: float
    blur: float


VIEWS: dict[str, View] = {
    "side": View(
        horizon=0.34,
        feet_far=0.40,
        feet_near=0.95,
        span_far=0.64,
        span_near=0.86,
        height_far=0.26,
        height_near=0.48,
        aspect=0.38,
        head=0.13,
        torso=(0.15, 0.50),
        shorts_bottom=0.66,
        shoes_top=0.93,
        floor=(95, 150, 205),
        gain=(0.95, 1.0, 1.06),
        offset=4.0,
        blur=0.6,
    ),
    "top": View(
        horizon=0.12,
        feet_far=0.24,
        feet_near=0.95,
        span_far=0.80,
        span_near=0.90,
        height_far=0.15,
        height_near=0.21,
        aspect=0.56,
        head=0.2,
        torso=(0.22, 0.60),
        shorts_bottom=0.74,
        shoes_top=0.91,
        floor=(125, 175, 215),
        gain=(1.08, 0.98, 0.9),
        offset=-8.0,
        blur=0.9,
    ),
}


def _shade(colour: Colour, amount: float) -> Colour:
    """``colour`` mixed towards white (``amount`` > 0) or black (< 0)."""
    base = np.array(colour, dtype=np.float64)
    mixed = base + amount * (255 - base) if amount > 0 else base * (1 + amount)
    return tuple(round(c) for c in mixed)  # type: ignore[return-value]


def make_roster(num_identities: int, num_guests: int, seed: int) -> list[Person]:
    """The people of a synthetic game: labelled roster players, then unlabelled guests.

    Players ``0 .. ceil(n / 2) - 1`` form the first team, the others the second. Numbers are
    distinct; two players of one team also differ in at least two of skin, hair, shorts shade,
    shoes, height and width. Guests alternate between referees and substitutes of a third team.

    Args:
        num_identities: roster players, labelled ``0 .. num_identities - 1``.
        num_guests: unlabelled people (label -1).
        seed: random seed.

    Returns:
        The people, players first.
    """
    rng = np.random.default_rng([seed, _STREAM["roster"]])
    numbers = rng.choice(np.arange(100), size=num_identities + num_guests, replace=False)
    sizes = (len(SKIN_TONES), len(HAIR_COLOURS), 3, len(SHOE_COLOURS), 3, 3)
    team_a = (num_identities + 1) // 2
    chosen: list[tuple[int, tuple[int, ...]]] = []  # (team, attribute indices)
    people = []
    for index in range(num_identities + num_guests):
        team = 0 if index < team_a else 1 if index < num_identities else 2
        for _attempt in range(200):
            attributes = tuple(int(rng.integers(0, size)) for size in sizes)
            if all(
                sum(a != b for a, b in zip(attributes, other)) >= 2
                for other_team, other in chosen
                if other_team == team
            ):
                break
        chosen.append((team, attributes))
        skin, hair, shade, shoes, tall, wide = attributes
        referee = index >= num_identities and (index - num_identities) % 2 == 0
        jersey, shorts, number_colour = TEAM_COLOURS[team]
        if referee:
            jersey, shorts = REFEREE_COLOURS
        people.append(
            Person(
                label=index if index < num_identities else UNKNOWN,
                referee=referee,
                jersey=jersey,
                number="" if referee else str(int(numbers[index])),
                number_colour=number_colour,
                skin=SKIN_TONES[skin],
                hair=HAIR_COLOURS[hair],
                shorts=shorts if referee else _shade(shorts, SHORTS_SHADES[shade]),
                shoes=SHOE_COLOURS[shoes],
                height_factor=HEIGHT_FACTORS[tall],
                width_factor=WIDTH_FACTORS[wide],
            )
        )
    return people


def _on_court(
    num_identities: int, num_guests: int, players: int, quarter: int, sessions: int, seed: int
) -> list[list[int]]:
    """Indices of the people on court in each session of a quarter (roster rotates each session)."""
    rng = np.random.default_rng([seed, _STREAM["schedule"], quarter])
    team_a = (num_identities + 1) // 2
    teams = (np.arange(team_a), np.arange(team_a, num_identities))
    orders = [rng.permutation(team) for team in teams]
    guests = np.arange(num_identities, num_identities + num_guests)
    offsets = [0, 0]
    schedule = []
    for session in range(sessions):
        # an odd number of players gives the extra place to each team in turn
        count_a = (players + (quarter + session) % 2) // 2
        count_a = min(len(teams[0]), max(players - len(teams[1]), count_a))
        present: list[int] = []
        for team, count in enumerate((count_a, players - count_a)):
            order = orders[team]
            present += [int(order[(offsets[team] + i) % len(order)]) for i in range(count)]
            offsets[team] += count
        num_present_guests = int(rng.integers(0, min(2, num_guests) + 1))
        present += [int(g) for g in rng.choice(guests, size=num_present_guests, replace=False)]
        schedule.append(present)
    return schedule


def _person_size(view: View, v: np.ndarray, person: Person, height: int) -> np.ndarray:
    """Person heights in pixels at depths ``v`` (widths are ``aspect * width_factor`` of it)."""
    return (
        height
        * (view.height_far + (view.height_near - view.height_far) * v)
        * (person.height_factor)
    )


def _project(
    view: View, u: np.ndarray, v: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Image ``x, y`` (pixels) of court points ``u, v``."""
    span = view.span_far + (view.span_near - view.span_far) * v
    x = width * (0.5 + (u - 0.5) * span)
    y = height * (view.feet_far + (view.feet_near - view.feet_far) * v)
    return x, y


def _u_at(view: View, x: np.ndarray, v: np.ndarray, width: int) -> np.ndarray:
    """Court ``u`` of image column ``x`` at depth ``v`` (inverse of :func:`_project` in x)."""
    span = view.span_far + (view.span_near - view.span_far) * v
    return 0.5 + (x / width - 0.5) / span


_CROWDING = np.array([0.09, 0.45])  # court distances (u, v) under which two people move apart
_COURT_LOW, _COURT_HIGH = np.array([0.03, 0.02]), np.array([0.97, 0.98])


def _walks(rng: np.random.Generator, count: int, frames: int) -> np.ndarray:
    """Smooth walks of ``count`` people on the court, ``(count, frames, 2)`` court ``u, v``.

    People turn gently, bounce off the lines and step apart when close, so they overlap only
    partly and briefly.
    """
    position = np.empty((count, 2))
    for person in range(count):
        for _attempt in range(30):
            candidate = rng.uniform((0.08, 0.05), (0.92, 0.95))
            gaps = np.abs(position[:person] - candidate) / _CROWDING
            if person == 0 or gaps.max(axis=1).min() >= 1:
                break
        position[person] = candidate
    heading = rng.uniform(0, 2 * np.pi, count)
    speed = rng.uniform(0.015, 0.045, count)
    points = np.empty((count, frames, 2))
    for frame in range(frames):
        points[:, frame] = position
        heading += rng.normal(0, 0.35, count)
        step = speed[:, None] * np.stack([np.cos(heading), 0.8 * np.sin(heading)], axis=1)
        gap = (position[:, None] - position[None]) / _CROWDING
        closeness = np.clip(1 - np.abs(gap).max(axis=2), 0, None)
        np.fill_diagonal(closeness, 0)
        push = 0.3 * _CROWDING * (closeness[..., None] * np.sign(gap)).sum(axis=1)
        position = position + step + push
        outside = (position < _COURT_LOW) | (position > _COURT_HIGH)
        heading = np.where(outside[:, 0], np.pi - heading, heading)
        heading = np.where(outside[:, 1], -heading, heading)
        position = np.clip(position, _COURT_LOW, _COURT_HIGH)
    return points


def _session_tracks(
    people: Sequence[Person],
    present: Sequence[int],
    views: Sequence[View],
    frames: int,
    height: int,
    width: int,
    rng: np.random.Generator,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Court tracks of the people in one session; one labelled player leaves the picture.

    Everyone else is kept inside every view; the runner walks straight towards the nearer end
    and in its last frame sticks out of one view's border by 15-40 % of its width (and out of
    the other views' borders by less, if at all).
    """
    walks = _walks(rng, len(present), frames)
    tracks = {index: (walks[k, :, 0], walks[k, :, 1]) for k, index in enumerate(present)}
    for index, (u, v) in tracks.items():
        for view in views:
            half = (
                0.5
                * view.aspect
                * people[index].width_factor
                * _person_size(view, v, people[index], height)
            )
            u = np.clip(u, _u_at(view, half + 1, v, width), _u_at(view, width - half - 1, v, width))
        tracks[index] = (u, v)
    labelled = [index for index in present if people[index].label != UNKNOWN]
    runner = labelled[int(rng.integers(0, len(labelled)))]
    u, v = tracks[runner]
    outside = rng.uniform(0.15, 0.4)
    targets = []
    for view in views:
        box_w = view.aspect * people[runner].width_factor
        box_w *= _person_size(view, v[-1:], people[runner], height)
        inside = box_w * (0.5 - outside)
        targets.append(_u_at(view, inside if u[0] < 0.5 else width - inside, v[-1:], width)[0])
    # the least extreme target: one view shows the chosen overhang, the others show less
    u_end = max(targets) if u[0] < 0.5 else min(targets)
    ramp = np.linspace(0, 1, frames) if frames > 1 else np.ones(1)
    tracks[runner] = (u[0] + (u_end - u[0]) * ramp, v)
    return tracks


def _court_lines() -> list[np.ndarray]:
    """Basketball court markings as polylines in court coordinates (28 m x 15 m, normalised)."""
    length, court_width = 28.0, 15.0
    t = np.linspace(0, 2 * np.pi, 48)
    lines = [
        np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], dtype=np.float64),
        np.array([[0.5, 0], [0.5, 1]]),
        np.stack([0.5 + 1.8 / length * np.cos(t), 0.5 + 1.8 / court_width * np.sin(t)], axis=1),
    ]
    arc = np.linspace(-1.33, 1.33, 32)
    for end, sign in ((0.0, 1.0), (1.0, -1.0)):
        key_u, key_v = end + sign * 5.8 / length, 2.45 / court_width
        lines.append(
            np.array([[end, 0.5 - key_v], [key_u, 0.5 - key_v], [key_u, 0.5 + key_v],
                      [end, 0.5 + key_v]])
        )  # fmt: skip
        basket = end + sign * 1.575 / length
        three = np.stack(
            [basket + sign * 6.75 / length * np.cos(arc), 0.5 + 6.75 / court_width * np.sin(arc)],
            axis=1,
        )
        lines.append(np.concatenate([[[end, three[0, 1]]], three, [[end, three[-1, 1]]]]))
    return lines


def _background(view: View, height: int, width: int, seed: int, view_index: int) -> np.ndarray:
    """The empty court seen from ``view``: stands, an advertising band, the floor and its lines."""
    rng = np.random.default_rng([seed, _STREAM["background"], view_index])
    horizon = max(1, round(view.horizon * height))
    rows = np.linspace(0.85, 1.1, height - horizon)[:, None, None]
    floor = np.clip(np.array(view.floor)[None, None] * rows, 0, 255)
    planks = rng.normal(0, 6, size=(1, max(2, width // 6), 1))
    floor = floor + cv2.resize(planks, (width, 1), interpolation=cv2.INTER_LINEAR)[..., None]
    crowd = rng.integers(40, 120, size=(max(1, horizon // 5), max(1, width // 5), 3))
    crowd = crowd.mean(axis=2, keepdims=True) * 0.5 + crowd * 0.5  # spectators in muted colours
    crowd = cv2.resize(crowd.astype(np.uint8), (width, horizon), interpolation=cv2.INTER_NEAREST)
    img = np.concatenate([crowd, np.clip(floor, 0, 255).astype(np.uint8)], axis=0)
    band = max(1, height // 30)
    img[max(0, horizon - band) : horizon] = (40, 120, 200) if view_index % 2 == 0 else (150, 60, 30)
    for line in _court_lines():
        x, y = _project(view, line[:, 0], line[:, 1], height, width)
        points = np.round(np.stack([x, y], axis=1) * 4).astype(np.int32)
        thickness = max(1, round(height / 180))
        cv2.polylines(img, [points], False, LINE_COLOUR, thickness, cv2.LINE_AA, shift=2)
    return img


_TEXT_SIZES: dict[str, tuple[int, int]] = {}


def _draw_number(
    img: np.ndarray, text: str, colour: Colour, box: tuple[int, int, int, int]
) -> None:
    """Jersey number centred in ``box`` (x0, y0, x1, y1), as large as fits."""
    if text not in _TEXT_SIZES:
        _TEXT_SIZES[text] = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 2)[0]
    text_w, text_h = _TEXT_SIZES[text]
    x0, y0, x1, y1 = box
    scale = min(0.8 * (x1 - x0) / text_w, 0.6 * (y1 - y0) / text_h)
    if scale * text_h < 4:
        return
    thickness = max(1, round(scale * 2))
    origin = (
        round((x0 + x1) / 2 - scale * text_w / 2),
        round((y0 + y1) / 2 + scale * text_h / 2),
    )
    cv2.putText(img, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)


def draw_person(
    img: np.ndarray, box: tuple[int, int, int, int], person: Person, view: View, phase: float
) -> None:
    """Draw ``person`` filling ``box`` exactly (hair on its top row, shoes on its bottom row).

    Args:
        img: BGR frame, drawn in place (parts outside it are clipped).
        box: ``x, y, w, h`` in pixels.
        person: who to draw.
        view: the camera angle (body proportions).
        phase: walking phase in radians (arm swing and stride).
    """
    x, y, w, h = box

    def row(fraction: float) -> int:
        return y + round(fraction * (h - 1))

    def col(fraction: float) -> int:
        return x + round(fraction * (w - 1))

    swing = round(0.025 * h * math.sin(phase))
    stride = 0.05 * math.sin(phase)
    torso_top, torso_bottom = row(view.torso[0]), row(view.torso[1])
    arm_w = max(1, round(0.17 * w))
    for left, sign in ((x, 1), (x + w - arm_w, -1)):
        top = row(view.torso[0] + 0.01) + sign * swing
        bottom = row(view.torso[1] + 0.05) + sign * swing
        cv2.rectangle(img, (left, top), (left + arm_w - 1, bottom), person.skin, -1)
    head_h = view.head * h
    centre = (x + (w - 1) / 2, y + head_h / 2)
    cv2.rectangle(img, (col(0.42), int(centre[1])), (col(0.58), torso_top), person.skin, -1)
    head_axes = (max(1, round(0.17 * w)), max(1, round(head_h / 2)))
    head_centre = (round(centre[0]), round(centre[1]))
    cv2.ellipse(img, head_centre, head_axes, 0, 0, 360, person.skin, -1)
    cv2.ellipse(img, head_centre, (head_axes[0] + 1, head_axes[1]), 0, 180, 360, person.hair, -1)
    shirt = (col(0.18), torso_top, col(0.82), torso_bottom)
    cv2.rectangle(img, shirt[:2], shirt[2:], person.jersey, -1)
    if person.referee:
        step = max(2, (shirt[2] - shirt[0]) // 5)
        for stripe in range(shirt[0] + step // 2, shirt[2], step):
            cv2.line(
                img, (stripe, torso_top), (stripe, torso_bottom), person.shorts, max(1, step // 3)
            )
    elif person.number:
        _draw_number(img, person.number, person.number_colour, shirt)
    shorts_bottom, shoes_top = row(view.shorts_bottom), row(view.shoes_top)
    cv2.rectangle(img, (col(0.2), torso_bottom), (col(0.8), shorts_bottom), person.shorts, -1)
    legs = person.shorts if person.referee else person.skin
    for centre_x in (0.34 + stride, 0.66 - stride):
        cv2.rectangle(
            img, (col(centre_x - 0.09), shorts_bottom), (col(centre_x + 0.09), shoes_top), legs, -1
        )
        cv2.rectangle(
            img,
            (col(centre_x - 0.13), shoes_top),
            (col(centre_x + 0.13), y + h - 1),
            person.shoes,
            -1,
        )


def _camera(view: View) -> np.ndarray:
    """Lookup table (1 x 256 x 3) applying the view's colour cast and brightness."""
    levels = np.arange(256, dtype=np.float64)[:, None] * np.array(view.gain)[None] + view.offset
    return np.clip(np.round(levels), 0, 255).astype(np.uint8)[None]


def _encode(img: np.ndarray, path: Path) -> None:
    """Write ``img`` as a JPEG of quality :data:`JPEG_QUALITY`."""
    ok, encoded = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"{path}: JPEG encoding failed")
    path.write_bytes(encoded.tobytes())


@dataclass(frozen=True)
class _Camera:
    """One angle ready to render: its name, view, empty court and colour lookup table."""

    angle: str
    index: int
    view: View
    background: np.ndarray
    lut: np.ndarray


def _boxes(
    view: View,
    people: Sequence[Person],
    tracks: dict[int, tuple[np.ndarray, np.ndarray]],
    frame: int,
    height: int,
    width: int,
) -> dict[int, tuple[int, int, int, int]]:
    """Integer ``x, y, w, h`` box of every tracked person in one frame of one view."""
    boxes = {}
    for index, (u, v) in tracks.items():
        person = people[index]
        size = _person_size(view, v[frame : frame + 1], person, height)[0]
        x, feet = _project(view, u[frame : frame + 1], v[frame : frame + 1], height, width)
        box_w = max(4, round(size * view.aspect * person.width_factor))
        box_h = max(8, round(size))
        boxes[index] = (round(x[0] - box_w / 2), round(feet[0]) - box_h, box_w, box_h)
    return boxes


def _render(
    camera: _Camera,
    people: Sequence[Person],
    boxes: dict[int, tuple[int, int, int, int]],
    phases: np.ndarray,
    grain_rng: np.random.Generator,
) -> np.ndarray:
    """One frame: people drawn far to near on the empty court, then blur, colour cast, grain."""
    img = camera.background.copy()
    for index in sorted(boxes, key=lambda i: (boxes[i][1] + boxes[i][3], i)):
        draw_person(img, boxes[index], people[index], camera.view, float(phases[index]))
    img = cv2.LUT(cv2.GaussianBlur(img, (3, 3), camera.view.blur), camera.lut)
    grain = grain_rng.integers(-3, 4, size=(*img.shape[:2], 1), dtype=np.int16)
    return np.clip(img + grain, 0, 255).astype(np.uint8)


def _write_dataset(folder: Path, params: dict) -> int:
    """Render every frame into ``folder/images`` and write the meta CSV; returns the row count."""
    height, width, seed = params["height"], params["width"], params["seed"]
    people = make_roster(params["num_identities"], params["num_guests"], seed)
    cameras = []
    for angle in params["angles"]:
        index, view = list(VIEWS).index(angle), VIEWS[angle]
        background = _background(view, height, width, seed, index)
        cameras.append(_Camera(angle, index, view, background, _camera(view)))
    views = [camera.view for camera in cameras]
    phases = np.random.default_rng([seed, _STREAM["tracks"]]).uniform(0, 2 * np.pi, len(people))
    (folder / IMAGES_FOLDER).mkdir()
    lines = [",".join(META_COLUMNS)]
    for q in range(params["quarters"]):
        schedule = _on_court(
            params["num_identities"],
            params["num_guests"],
            params["players_per_frame"],
            q,
            params["sessions"],
            seed,
        )
        for s, present in enumerate(schedule):
            rng = np.random.default_rng([seed, _STREAM["tracks"], q, s])
            frames = params["frames_per_session"]
            tracks = _session_tracks(people, present, views, frames, height, width, rng)
            order = sorted(present, key=lambda i: (people[i].label == UNKNOWN, i))
            for f in range(frames):
                for camera in cameras:
                    boxes = _boxes(camera.view, people, tracks, f, height, width)
                    grain_rng = np.random.default_rng(
                        [seed, _STREAM["grain"], q, s, f, camera.index]
                    )
                    img = _render(camera, people, boxes, phases + 1.3 * f, grain_rng)
                    key = {"quarter": f"Q{q + 1}", "angle": camera.angle, "session": s + 1}
                    key["frame"] = f + 1
                    _encode(img, folder / IMAGES_FOLDER / FRAME_PATTERN.format(**key))
                    prefix = ",".join(str(value) for value in key.values())
                    for index in order:
                        box = ",".join(str(value) for value in boxes[index])
                        lines.append(f"{prefix},{box},{people[index].label}")
    (folder / META_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines) - 1


def _check_arguments(params: dict) -> None:
    """Raise a one-line ``ValueError`` for impossible generation parameters."""
    unknown = [a for a in params["angles"] if a not in VIEWS]
    if not params["angles"] or unknown or len(set(params["angles"])) != len(params["angles"]):
        raise ValueError(
            f"angles must be distinct names among {list(VIEWS)}, got {params['angles']}"
        )
    if not params["num_identities"] >= 2 or params["num_identities"] + params["num_guests"] > 100:
        raise ValueError(
            "need num_identities >= 2 and num_identities + num_guests <= 100 (numbers)"
        )
    if params["num_guests"] < 0:
        raise ValueError(f"num_guests must be >= 0, got {params['num_guests']}")
    if not 1 <= params["players_per_frame"] <= params["num_identities"]:
        raise ValueError(
            f"players_per_frame must be between 1 and num_identities ({params['num_identities']}),"
            f" got {params['players_per_frame']}"
        )
    for name in ("quarters", "sessions", "frames_per_session"):
        if not 1 <= params[name] <= 99:
            raise ValueError(f"{name} must be between 1 and 99, got {params[name]}")
    if params["height"] < 64 or params["width"] < 64:
        raise ValueError(
            f"height and width must be >= 64, got {params['height']}x{params['width']}"
        )


def synth_reid(
    out: Path,
    num_identities: int = 20,
    num_guests: int = 4,
    quarters: int = 4,
    sessions: int = 3,
    frames_per_session: int = 6,
    angles: Sequence[str] = ("side", "top"),
    players_per_frame: int = 8,
    height: int = 360,
    width: int = 640,
    seed: int = 0,
) -> Path:
    """Write a synthetic player re-identification dataset (frames and meta CSV).

    Basketball frames of two teams of labelled players plus unlabelled referees and guests
    (``label_id`` -1, the open-set unknowns), seen from two camera angles, and
    ``train_meta.csv`` with one box per visible person. The same arguments give byte-identical
    files. The dataset is built in a hidden sibling folder and renamed into place with its
    ``.complete`` marker, so an interrupted run never looks finished; when ``out`` already holds
    this dataset, nothing is written.

    Args:
        out: dataset folder (gets ``images/``, ``train_meta.csv`` and ``.complete``).
        num_identities: roster players (labels ``0 .. num_identities - 1``), in two teams.
        num_guests: referees and substitutes of another team, unlabelled; 0-2 per session.
        quarters: game quarters (``Q1`` ..).
        sessions: sessions per quarter; the roster on court rotates between sessions.
        frames_per_session: frames per session and angle; people move smoothly across them.
        angles: camera angles, among ``side`` and ``top``.
        players_per_frame: labelled players on court in every frame.
        height: frame height in pixels.
        width: frame width in pixels.
        seed: random seed.

    Returns:
        ``out``.

    Raises:
        ValueError: impossible parameters.
        DatasetError: ``out`` exists but is not this dataset.
    """
    out = Path(out)
    params = {
        "version": FORMAT_VERSION,
        "num_identities": int(num_identities),
        "num_guests": int(num_guests),
        "quarters": int(quarters),
        "sessions": int(sessions),
        "frames_per_session": int(frames_per_session),
        "angles": [str(a) for a in angles],
        "players_per_frame": int(players_per_frame),
        "height": int(height),
        "width": int(width),
        "seed": int(seed),
    }
    _check_arguments(params)
    built, rows = generate_once(
        out, params, lambda folder: _write_dataset(folder, params), "synthetic ReID dataset", True
    )
    if not built:
        return out
    frames = params["quarters"] * params["sessions"] * frames_per_session * len(params["angles"])
    print(f"{out}: {frames} frames {width}x{height}, {rows} boxes of {num_identities} players")
    return out
