"""``neo data synth-reid|negatives|crops`` and ReID bad input through the CLI: one line, exit 1."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from neo.cli import main

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "tiny_reid.yaml")
SMALL = ["--num_identities", "6", "--num_guests", "1", "--quarters", "2", "--sessions", "2",
         "--frames_per_session", "2", "--players_per_frame", "4", "--height", "180",
         "--width", "320"]  # fmt: skip


@pytest.fixture(scope="module")
def players(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("players") / "reid"
    assert main(["data", "synth-reid", "--out", str(root), *SMALL]) == 0
    return root


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_negatives_and_crops_verbs_write_their_tables(players, tmp_path):
    meta, images = players / "train_meta.csv", players / "images"
    negatives = tmp_path / "negatives.csv"
    code = main(["data", "negatives", "--train_meta", str(meta), "--img_root", str(images),
                 "--output", str(negatives), "--num_bg_per_frame", "2",
                 "--num_partial_per_box", "1"])  # fmt: skip
    assert code == 0
    kinds = [r["kind"] for r in rows(negatives)]
    frames = len(list(images.glob("*.jpg")))
    assert kinds.count("background") <= 2 * frames and kinds.count("partial") > 0
    out = tmp_path / "crops"
    code = main(["data", "crops", "--meta", str(meta), "--img_root", str(images),
                 "--out", str(out), "--bbox_mode", "clip", "--workers", "1"])  # fmt: skip
    assert code == 0
    table = rows(out / "crops.csv")
    assert len(table) == len(rows(meta))  # clip keeps every box
    assert all((out / r["crop_path"]).is_file() for r in table)


def fit_with_data(tmp_path: Path, capsys, **init_args: object) -> tuple[int, str]:
    fragment = tmp_path / "data.yaml"
    lines = ["class_path: neo.data.ReIDDataModule", "init_args:"]
    lines += [f"  {key}: {value}" for key, value in init_args.items()]
    fragment.write_text("\n".join(lines) + "\n")
    code = main(["fit", "--config", CONFIG, "--data", str(fragment),
                 "--trainer.default_root_dir", str(tmp_path),
                 "--trainer.logger.init_args.save_dir", str(tmp_path)])  # fmt: skip
    return code, capsys.readouterr().err


def test_meta_missing_a_column_is_one_line_naming_it(players, tmp_path, capsys):
    meta = tmp_path / "meta.csv"
    text = (players / "train_meta.csv").read_text().splitlines()
    meta.write_text("\n".join(",".join(line.split(",")[:-1]) for line in text) + "\n")
    code, err = fit_with_data(tmp_path, capsys, meta=meta, img_root=players / "images")
    assert code == 1
    (line,) = [x for x in err.splitlines() if x.startswith("neo: error:")]
    assert "meta.csv" in line and "label_id" in line


def test_missing_negatives_file_says_how_to_make_it(players, tmp_path, capsys):
    code, err = fit_with_data(
        tmp_path,
        capsys,
        meta=players / "train_meta.csv",
        img_root=players / "images",
        crop_dir=tmp_path / "crops",
        negatives=tmp_path / "absent.csv",
    )
    assert code == 1
    (line,) = [x for x in err.splitlines() if x.startswith("neo: error:")]
    assert "absent.csv" in line and "neo data negatives" in line


def test_cache_size_zero_is_refused(players, tmp_path, capsys):
    code, err = fit_with_data(
        tmp_path,
        capsys,
        meta=players / "train_meta.csv",
        img_root=players / "images",
        cache_size=0,
    )
    assert code == 1 and "cache_size must be > 0" in err
