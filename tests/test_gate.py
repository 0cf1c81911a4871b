"""The quality gate's verdicts and floors (the slices themselves run in CI after the tests: .ci/run)."""

from __future__ import annotations

import json

import pytest

from app.bench import gate
from app.bench.gate import Figure, check, write_floors
from app.bench.scoring import with_changes
from app.config import load_settings
from app.errors import ConfigError

FLOOR = {"psnr": 30.0}


def test_a_figure_at_or_above_its_floor_less_the_tolerance_passes():
    assert check("lossless", Figure(30.0, 28.0, 1.0, 10), FLOOR, 0.03) == []
    assert check("lossless", Figure(29.97, 28.0, 1.0, 10), FLOOR, 0.03) == []


def test_a_figure_below_its_floor_fails_naming_the_slice_figure_and_floor():
    [failure] = check("kernel_given", Figure(29.96, 28.0, 1.0, 10), FLOOR, 0.03)
    assert failure.startswith("kernel_given:") and "29.960" in failure and "30.000" in failure


def test_learning_that_costs_quality_fails_a_photo_slice():
    [failure] = check("photo_bicubic_q85", Figure(30.0, 28.0, 1.0, 10, off=30.05), FLOOR, 0.03)
    assert "learning gain" in failure and "-0.050" in failure
    assert check("photo_bicubic_q85", Figure(30.0, 28.0, 1.0, 10, off=30.02), FLOOR, 0.03) == []


def test_a_slice_without_a_floor_fails():
    assert "no floor" in check("web_job", Figure(30.0, 28.0, 1.0, 10), None, 0.03)[0]


def test_floors_rise_with_a_better_figure_and_never_fall_silently():
    floors = {"tolerance_db": 0.03, "slices": {"lossless": {"psnr": 30.0}}}
    raised = write_floors({"lossless": Figure(30.2, 28.0, 1.0, 10)}, floors, False, "cpu")
    assert raised["slices"]["lossless"]["psnr"] == 30.2 and floors["slices"]["lossless"]["psnr"] == 30.0
    with pytest.raises(SystemExit, match="never lowered"):
        write_floors({"lossless": Figure(29.9, 28.0, 1.0, 10)}, floors, False, "cpu")
    assert write_floors({"lossless": Figure(29.9, 28.0, 1.0, 10)}, floors, True, "cpu")["slices"]["lossless"][
        "psnr"] == 29.9


def test_the_committed_floors_cover_every_slice():
    floors = json.loads(gate.FLOORS.read_text())
    assert set(floors["slices"]) == set(gate.SLICES)
    assert 0 < floors["tolerance_db"] <= 0.05
    for name, floor in floors["slices"].items():
        assert floor["psnr"] > floor["bicubic"], name  # every path beats bicubic


def test_changes_reach_one_profile_or_pin_over_all():
    shipped = load_settings().engine
    settings = with_changes(load_settings(), {"profiles.kernel_given.learning_share": 0.5, "lr": 1e-3})
    engine = settings.engine
    assert engine.with_profile("kernel_given").learning_share == 0.5
    for name in ("photo", "lossless", "kernel_estimated"):  # the other profiles keep their own
        assert engine.with_profile(name).learning_share == shipped.with_profile(name).learning_share, name
    assert all(engine.with_profile(name).lr == 1e-3 for name in engine.profiles)
    with pytest.raises(ConfigError, match="no profile"):
        with_changes(load_settings(), {"profiles.nothing.lr": 1e-3})
