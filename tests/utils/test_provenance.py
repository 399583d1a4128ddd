"""Provenance: the git commit (dirty when tracked files changed) and a fingerprint of the data."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from neo.utils.provenance import data_fingerprint, git_commit, run_provenance


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_commit_names_the_checkout_and_marks_changes(tmp_path):
    assert git_commit(tmp_path) is None  # not a checkout
    git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "-c", "user.name=n", "-c", "user.email=e@x", "commit", "-q", "-m", "m")
    head = git(tmp_path, "rev-parse", "HEAD")
    assert git_commit(tmp_path) == head
    (tmp_path / "untracked.txt").write_text("ignored")
    assert git_commit(tmp_path) == head
    (tmp_path / "a.txt").write_text("two")
    assert git_commit(tmp_path) == f"{head}-dirty"


def test_data_fingerprint_follows_content_not_order(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text('{"x": 1}')
    b.write_text('{"y": 2}')
    first = data_fingerprint([a, b])
    assert first == data_fingerprint([b, a]) and len(first) == 16
    b.write_text('{"y": 3}')
    assert data_fingerprint([a, b]) != first
    assert data_fingerprint([]) is None


def test_run_provenance_reads_the_data_modules_sources(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("id\n1\n")

    class Module:
        def fingerprint_sources(self):
            return [labels]

    recorded = run_provenance(Module())
    assert recorded["data_files"] == 1
    assert recorded["data_fingerprint"] == data_fingerprint([labels])
    assert run_provenance(object())["data_fingerprint"] is None
