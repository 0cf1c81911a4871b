"""The authors' learning-rate policy: decay on a flat error curve, not on a steep fall; timing rules; stopping."""

from __future__ import annotations

import numpy as np
import pytest

from app.engine.config import EngineConfig
from app.engine.lr_policy import LearningRatePolicy


def config(**changes) -> EngineConfig:
    base = dict(lr=1e-3, lr_decay=0.1, lr_stop=9e-6, lr_decay_ratio=1.5, lr_decay_range=40, lr_decay_step=10,
                eval_every=1, min_iters=0)
    return EngineConfig(**{**base, **changes})


def run(policy: LearningRatePolicy, curve, iterations: int, eval_every: int = 1) -> list[float]:
    """Feed `curve(i)` at every `eval_every`-th iteration and step the policy; returns the lr after each."""
    rates = []
    for i in range(1, iterations + 1):
        if i % eval_every == 0:
            policy.record(i, curve(i))
        rates.append(policy.step(i))
    return rates


def noisy_flat(seed: int = 0):
    rng = np.random.default_rng(seed)
    return lambda i: 0.05 + 0.002 * rng.standard_normal()


def steep_fall(seed: int = 0):
    rng = np.random.default_rng(seed)
    return lambda i: 1.0 - 0.01 * i + 0.002 * rng.standard_normal()


def test_decays_on_a_flat_noisy_curve():
    policy = LearningRatePolicy(config())
    rates = run(policy, lambda i: 0.05 + 0.002 * (-1) ** i, 10)
    assert policy.decays == [10]
    assert rates[:9] == [1e-3] * 9
    assert rates[9] == pytest.approx(1e-4)
    assert policy.lr == pytest.approx(1e-4)


def test_does_not_decay_on_a_steep_fall():
    policy = LearningRatePolicy(config())
    rates = run(policy, steep_fall(), 200)
    assert policy.decays == []
    assert set(rates) == {1e-3}


def test_decays_on_a_rising_curve():
    policy = LearningRatePolicy(config())
    run(policy, lambda i: 0.01 + 0.001 * i, 10)
    assert policy.decays == [10]


@pytest.mark.parametrize("seed", range(5))
def test_flat_curves_decay_and_falls_do_not_across_noise(seed):
    # Pure noise can look like a fall over one window, so allow a few checks; a real fall never decays.
    flat = LearningRatePolicy(config())
    run(flat, noisy_flat(seed), 40)
    assert flat.decays and all(d % 10 == 0 for d in flat.decays)
    falling = LearningRatePolicy(config())
    run(falling, steep_fall(seed), 40)
    assert not falling.decays


def test_only_the_recent_window_counts():
    # A long steep fall, then a plateau longer than lr_decay_range: the plateau decides, so it decays.
    plateau = LearningRatePolicy(config(lr_decay_range=20, lr_stop=0.0))
    run(plateau, lambda i: max(1.0 - 0.01 * i, 0.5) + 0.001 * (-1) ** i, 80)
    assert plateau.decays and plateau.decays[0] > 50
    # A long plateau (decaying every check), then a steep fall: once the window holds only the fall, no decay.
    dive = LearningRatePolicy(config(lr_decay_range=20, lr_stop=0.0))
    run(dive, lambda i: 0.8 + 0.001 * (-1) ** i if i <= 100 else 0.8 - 0.01 * (i - 100), 160)
    assert dive.decays[:10] == list(range(10, 101, 10))
    assert [d for d in dive.decays if d > 110] == []


def test_checks_only_every_lr_decay_step():
    policy = LearningRatePolicy(config(lr_decay_step=7, lr_stop=0.0))
    run(policy, lambda i: 0.05 + 0.002 * (-1) ** i, 60)
    assert policy.decays == [7, 14, 21, 28, 35, 42, 49, 56]


def test_respects_min_iters_after_the_start_and_after_each_decay():
    policy = LearningRatePolicy(config(min_iters=30, lr_decay_step=10, lr_stop=0.0))
    run(policy, lambda i: 0.05 + 0.002 * (-1) ** i, 130)
    # The first check more than 30 iterations after the start is at 40, then 80 (70 - 40 is not more than 30).
    assert policy.decays == [40, 80, 120]


def test_needs_enough_points_for_a_fit():
    policy = LearningRatePolicy(config(lr_decay_step=10))
    run(policy, lambda i: 0.05 + 0.002 * (-1) ** (i // 10), 30, eval_every=10)  # three points by iteration 30
    assert policy.decays == []
    assert policy.slope_and_std(30) is None


def test_slope_is_error_against_iteration():
    policy = LearningRatePolicy(config(lr_decay_range=100))
    for i in range(1, 21):
        policy.record(i, 3.0 - 0.25 * i)
    slope, std = policy.slope_and_std(20)
    assert slope == pytest.approx(-0.25)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_finished_once_below_lr_stop():
    policy = LearningRatePolicy(config(lr=1e-3, lr_decay=0.1, lr_stop=9e-6, lr_decay_step=10))
    assert not policy.finished
    for i in range(1, 31):
        policy.record(i, 0.05 + 0.002 * np.sin(3.0 * i))
        policy.step(i)
        if i == 20:
            assert policy.lr == pytest.approx(1e-5) and not policy.finished
    assert policy.lr == pytest.approx(1e-6)
    assert policy.finished


def test_slope_std_divides_the_residuals_by_n_minus_4_as_the_authors_numpy_did():
    # Five points by hand: x = 50..250, y = (5, 3, 4, 1, 2). Mean x 150, Sxx = 2 * (100^2 + 50^2) = 25000;
    # Sxy = -100*5 - 50*3 + 0 + 50*1 + 100*2 = -400, slope = -0.016; residuals about the line
    # y - 3 + 0.016 (x - 150) = (0.4, -0.8, 1, -1.2, 0.6), sum of squares 3.6; std = sqrt(3.6 / (5 - 4) / 25000).
    policy = LearningRatePolicy(config(lr_decay_range=1000))
    for x, y in zip((50, 100, 150, 200, 250), (5.0, 3.0, 4.0, 1.0, 2.0)):
        policy.record(x, y)
    slope, std = policy.slope_and_std(250)
    assert slope == pytest.approx(-0.016, rel=1e-12)
    assert std == pytest.approx(0.012, rel=1e-12)
    # NumPy 1.16 and later scale by n - 2 instead: a std sqrt(3) smaller than the authors' policy used.
    _, cov = np.polyfit([50, 100, 150, 200, 250], [5.0, 3.0, 4.0, 1.0, 2.0], 1, cov=True)
    assert std == pytest.approx(np.sqrt(cov[0, 0]) * np.sqrt(3), rel=1e-9)


def test_four_points_are_too_few_for_the_authors_fit():
    policy = LearningRatePolicy(config(lr_decay_range=1000))
    for i, e in enumerate((0.3, 0.1, 0.2, 0.1), start=1):
        policy.record(i * 10, e)
    assert policy.slope_and_std(40) is None
    policy.record(50, 0.2)
    assert policy.slope_and_std(50) is not None


@pytest.mark.parametrize("source", ["config.json", "fast", "paper"])
def test_shipped_settings_decay_on_a_noisy_plateau(source):
    # With the shipped schedules a plateau must decay at the first check after min_iters; a window read from
    # lr_decay_step instead of lr_decay_range would hold too few points and never decay.
    import json
    from pathlib import Path

    from app.engine.presets import preset_config

    if source == "config.json":
        values = json.loads((Path(__file__).resolve().parent.parent / "config.json").read_text())
        keys = ("lr", "lr_stop", "lr_decay", "lr_decay_ratio", "lr_decay_range", "lr_decay_step", "eval_every",
                "min_iters")
        shipped = EngineConfig(**{k: values[k] for k in keys})
    else:
        shipped = preset_config(source)
    policy = LearningRatePolicy(shipped)
    rng = np.random.default_rng(4)
    iterations = 2 * shipped.min_iters + 4 * shipped.lr_decay_step
    rates = run(policy, lambda i: 0.02 + 0.001 * rng.standard_normal(), iterations, eval_every=shipped.eval_every)
    first_check = (shipped.min_iters // shipped.lr_decay_step + 1) * shipped.lr_decay_step
    assert policy.decays and policy.decays[0] == first_check
    assert rates[first_check - 1] == pytest.approx(shipped.lr * shipped.lr_decay)


@pytest.mark.parametrize("n", [6, 9])
def test_slope_std_divides_by_n_minus_4_on_windows_wider_than_five(n):
    # On five points n - 4 is 1, so only a longer window tells dividing by it from multiplying by it.
    rng = np.random.default_rng(n)
    x = 10.0 * np.arange(1, n + 1)
    y = 0.5 - 0.001 * x + 0.01 * rng.standard_normal(n)
    policy = LearningRatePolicy(config(lr_decay_range=1000))
    for i, e in zip(x, y):
        policy.record(int(i), float(e))
    slope, std = policy.slope_and_std(int(x[-1]))
    (expected_slope, _), cov = np.polyfit(x, y, 1, cov=True)
    assert slope == pytest.approx(expected_slope, rel=1e-9)
    assert std == pytest.approx(np.sqrt(cov[0, 0] * (n - 2) / (n - 4)), rel=1e-9)


def test_the_point_exactly_lr_decay_range_back_is_outside_the_window():
    # Errors at 10, 20, ..., 60; at iteration 60 a range of 50 keeps 20..60, and the outlier at 10 must not count.
    policy = LearningRatePolicy(config(lr_decay_range=50))
    for i, e in zip(range(10, 70, 10), (9.0, 0.5, 0.4, 0.3, 0.2, 0.1)):
        policy.record(i, e)
    slope, std = policy.slope_and_std(60)
    assert slope == pytest.approx(-0.01, rel=1e-9)
    assert std == pytest.approx(0.0, abs=1e-12)
    policy.record(70, 0.0)
    assert policy.slope_and_std(70) == pytest.approx((-0.01, 0.0), abs=1e-12)


def test_the_first_check_past_min_iters_from_the_start_decays():
    # min_iters = 9 and a check every 10: iteration 10 is more than 9 past the start (iteration 0), so it decays.
    policy = LearningRatePolicy(config(min_iters=9, lr_decay_step=10))
    run(policy, lambda i: 0.05 + 0.002 * (-1) ** i, 10)
    assert policy.decays == [10]
    near = LearningRatePolicy(config(min_iters=10, lr_decay_step=10))
    run(near, lambda i: 0.05 + 0.002 * (-1) ** i, 10)
    assert near.decays == []


def test_an_exactly_constant_error_does_not_decay():
    # Slope 0 and std 0: the authors' test is strict (-ratio * slope < std), and -0.0 < 0.0 is false.
    policy = LearningRatePolicy(config())
    run(policy, lambda i: 0.25, 40)  # a power of two, so the mean and residuals are exact
    assert policy.slope_and_std(40) == (0.0, 0.0)
    assert policy.decays == []
