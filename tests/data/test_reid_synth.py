import csv
import itertools
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from neo.data.generated import MARKER
from neo.data.problems import DatasetError
from neo.data.reid.synth import (
    META_COLUMNS,
    VIEWS,
    Person,
    draw_person,
    make_roster,
    synth_reid,
)

SMALL = {
    "num_identities": 6,
    "num_guests": 2,
    "quarters": 2,
    "sessions": 2,
    "frames_per_session": 3,
    "players_per_frame": 4,
    "height": 180,
    "width": 320,
}
HEIGHT, WIDTH = SMALL["height"], SMALL["width"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_reid(tmp_path_factory.mktemp("reid") / "ds", seed=3, **SMALL)


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "train_meta.csv", newline="") as f:
        return list(csv.DictReader(f))


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _box(row: dict[str, str]) -> tuple[int, int, int, int]:
    return int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"])


def _inside(row: dict[str, str]) -> bool:
    x, y, w, h = _box(row)
    return x >= 0 and y >= 0 and x + w <= WIDTH and y + h <= HEIGHT


def test_files_and_columns(dataset: Path) -> None:
    with open(dataset / "train_meta.csv", newline="") as f:
        assert next(csv.reader(f)) == list(META_COLUMNS)
    rows = _rows(dataset)
    frames = sorted(p.name for p in (dataset / "images").iterdir())
    assert len(frames) == 2 * 2 * 3 * 2
    assert "Q2__top__02__03.jpg" in frames and "Q1__side__01__01.jpg" in frames
    assert cv2.imread(str(dataset / "images" / frames[0])).shape == (HEIGHT, WIDTH, 3)
    for row in rows:
        name = (
            f"{row['quarter']}__{row['angle']}__{int(row['session']):02d}__{int(row['frame']):02d}"
        )
        assert f"{name}.jpg" in frames
        _, _, w, h = _box(row)
        assert w > 0 and h > 0
    # every frame shows the labelled players on court plus 0-2 guests
    per_frame = defaultdict(list)
    for row in rows:
        per_frame[(row["quarter"], row["angle"], row["session"], row["frame"])].append(row)
    assert len(per_frame) == len(frames)
    for boxes in per_frame.values():
        assert sum(int(r["label_id"]) >= 0 for r in boxes) == SMALL["players_per_frame"]
        assert sum(int(r["label_id"]) == -1 for r in boxes) <= 2


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path, dataset: Path) -> None:
    again = _files(synth_reid(tmp_path / "again", seed=3, **SMALL))
    first = _files(dataset)
    assert again == first
    other = _files(synth_reid(tmp_path / "other", seed=4, **SMALL))
    assert other["train_meta.csv"] != first["train_meta.csv"]
    assert other["images/Q1__side__01__01.jpg"] != first["images/Q1__side__01__01.jpg"]


def test_identities_span_groups_and_angles(dataset: Path) -> None:
    rows = _rows(dataset)
    groups, angles = defaultdict(set), defaultdict(set)
    for row in rows:
        label = int(row["label_id"])
        groups[label].add((row["quarter"], row["session"]))
        angles[label].add(row["angle"])
    assert set(groups) == {-1, *range(SMALL["num_identities"])}
    for label in range(SMALL["num_identities"]):
        assert len(groups[label]) >= 2, label
        assert angles[label] == {"side", "top"}, label


def test_boxes_mostly_inside_some_past_the_border(dataset: Path) -> None:
    rows = _rows(dataset)
    past = [row for row in rows if not _inside(row)]
    assert 1 <= len(past) <= 0.1 * len(rows)
    for row in past:  # slightly past: most of the person is still in the frame
        x, _, w, _ = _box(row)
        assert -0.5 * w < x and x + w < WIDTH + 0.5 * w


def test_people_move_smoothly(dataset: Path) -> None:
    centres = defaultdict(dict)
    for row in _rows(dataset):
        if int(row["label_id"]) >= 0:
            x, _, w, _ = _box(row)
            key = (row["label_id"], row["quarter"], row["session"], row["angle"])
            centres[key][int(row["frame"])] = x + w / 2
    steps = [abs(c[f + 1] - c[f]) for c in centres.values() for f in c if f + 1 in c]
    assert steps and float(np.median(steps)) < 0.05 * WIDTH


def test_different_identities_differ_more_than_one_identity(dataset: Path) -> None:
    crops = defaultdict(list)
    for row in _rows(dataset):
        label = int(row["label_id"])
        if label < 0 or row["angle"] != "side" or not _inside(row):
            continue
        frame = f"{row['quarter']}__side__{int(row['session']):02d}__{int(row['frame']):02d}.jpg"
        x, y, w, h = _box(row)
        img = cv2.imread(str(dataset / "images" / frame))
        crops[label].append(cv2.resize(img[y : y + h, x : x + w], (16, 32)).astype(np.float32))
    team_size = (SMALL["num_identities"] + 1) // 2
    same, teammates = [], []  # teammates share the jersey colour: only the person tells them apart
    for (label_a, a), (label_b, b) in itertools.combinations(
        [(label, crop) for label, items in crops.items() for crop in items], 2
    ):
        if (label_a < team_size) == (label_b < team_size):
            (same if label_a == label_b else teammates).append(float(np.abs(a - b).mean()))
    assert len(crops) == SMALL["num_identities"]
    assert np.median(same) < 0.7 * np.median(teammates)


def test_roster_identities_differ_in_two_attributes() -> None:
    people = make_roster(20, 4, seed=0)
    players = [p for p in people if p.label >= 0]
    assert [p.label for p in players] == list(range(20))
    assert all(p.label == -1 for p in people[20:]) and any(p.referee for p in people[20:])
    assert len({p.number for p in players}) == 20

    def looks(p: Person) -> tuple:
        return (p.skin, p.hair, p.shorts, p.shoes, p.height_factor, p.width_factor)

    for a, b in itertools.combinations(players, 2):
        if a.jersey == b.jersey:
            assert sum(x != y for x, y in zip(looks(a), looks(b))) >= 2


def test_person_fills_its_box_exactly() -> None:
    person = make_roster(4, 0, seed=1)[0]
    for name, view in VIEWS.items():
        img = np.zeros((200, 160, 3), np.uint8)
        draw_person(img, (30, 20, 50, 130), person, view, phase=0.7)
        ys, xs = np.nonzero(img.any(axis=2))
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (30, 20, 80, 150), name


def test_second_call_reuses_the_dataset(dataset: Path) -> None:
    paths = [dataset / "train_meta.csv", dataset / MARKER, dataset / "images/Q1__top__01__01.jpg"]
    before = [p.stat().st_mtime_ns for p in paths]
    assert synth_reid(dataset, seed=3, **SMALL) == dataset
    assert [p.stat().st_mtime_ns for p in paths] == before
    with pytest.raises(DatasetError, match="other parameters"):
        synth_reid(dataset, seed=4, **SMALL)


def test_interrupted_write_is_not_complete(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    staging = tmp_path / ".ds.tmp-999-abc"  # what a killed run leaves behind
    (staging / "images").mkdir(parents=True)
    (staging / "train_meta.csv").write_text("quarter\n")
    synth_reid(out, **SMALL)
    assert (out / MARKER).is_file() and len(_rows(out)) > 20
    partial = tmp_path / "partial"
    (partial / "images").mkdir(parents=True)
    (partial / "train_meta.csv").write_text("quarter\n")
    with pytest.raises(DatasetError, match="not a complete"):
        synth_reid(partial, **SMALL)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="angles"):
        synth_reid(tmp_path / "a", angles=["side", "drone"])
    with pytest.raises(ValueError, match="players_per_frame"):
        synth_reid(tmp_path / "b", num_identities=4, players_per_frame=5)
    assert not (tmp_path / "a").exists()
