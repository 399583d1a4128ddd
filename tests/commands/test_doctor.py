"""``neo doctor`` reports versions, names what is missing with what to do, and fails on gaps."""

from __future__ import annotations

import torch

from neo.cli import main
from neo.commands import doctor


def test_doctor_reports_the_installed_versions(capsys):
    assert main(["doctor"]) in (0, None)
    out = capsys.readouterr().out
    assert torch.__version__.split("+")[0] in out
    assert "ONNX Runtime providers" in out and "CPUExecutionProvider" in out
    assert "TensorRT" in out


def test_a_missing_required_package_fails_with_what_to_do(monkeypatch, capsys):
    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda name: None if name == "sahi" else real(name))
    assert doctor.doctor() == 1
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("sahi"))
    assert "missing" in line and "uv sync" in line
    assert "neo doctor: missing sahi" in out


def test_optional_gpu_pieces_missing_do_not_fail(monkeypatch, capsys):
    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda name: None if name == "tensorrt" else real(name))
    assert doctor.doctor() == 0
    line = next(
        line for line in capsys.readouterr().out.splitlines() if line.startswith("TensorRT")
    )
    assert "missing" in line and "--extra tensorrt" in line
