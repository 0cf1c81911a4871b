"""A job's progress from the engine's callbacks (app/jobs/progress.py) on a fake clock, without threads: steps and
iterations counted, the time left estimated with and without a budget, the bar that never goes back, the end."""

from __future__ import annotations

import pytest

from app.jobs.progress import ProgressTracker, final_progress
from test_jobs import Clock


def tracker(clock: Clock, steps: int = 3, num_epochs: int = 100, budget_s: float | None = None,
            scale_factor: float = 2.0, hint: float | None = None) -> ProgressTracker:
    return ProgressTracker(steps, num_epochs, budget_s, scale_factor, clock, last_enlarge_hint_s=hint)


def test_before_the_engine_reports_there_is_only_the_time_spent():
    clock = Clock()
    t = tracker(clock)
    clock.now += 4
    p = t.snapshot()
    assert (p.step, p.steps, p.phase, p.iteration, p.iterations, p.loss) == (0, 3, None, 0, 0, None)
    assert (p.fraction, p.eta_s, p.elapsed_s) == (0.0, None, 4.0)


def test_iterations_add_up_over_the_steps_and_a_phase_change_within_a_step_keeps_them():
    clock = Clock()
    t = tracker(clock)
    t.on_step(1, 30, 0.5, 1e-3)
    t.on_phase(1, "enlarging")
    p = t.snapshot()
    assert (p.step, p.phase, p.iteration, p.iterations) == (1, "enlarging", 30, 30)
    t.on_phase(2, "training")
    assert (t.snapshot().iteration, t.snapshot().iterations) == (0, 30)
    t.on_step(2, 12, 0.25, 1e-4)
    p = t.snapshot()
    assert (p.step, p.phase, p.iteration, p.iterations, p.loss) == (2, "training", 12, 42, 0.25)
    assert isinstance(p.loss, float)


def test_a_training_report_after_enlarging_in_the_same_step_switches_back_to_training():
    clock = Clock()
    t = tracker(clock)
    t.on_step(1, 10, 0.5, 1e-3)
    t.on_phase(1, "enlarging")
    t.on_step(1, 11, 0.4, 1e-3)
    assert t.snapshot().phase == "training" and t.snapshot().iterations == 11


def test_without_a_budget_the_time_left_is_extrapolated_from_the_iterations():
    clock = Clock()
    t = tracker(clock, steps=2, num_epochs=100)
    t.on_step(1, 25, 0.5, 1e-3)
    clock.now += 5
    # A quarter of a step of two: an eighth done in 5 s, 35 s to go.
    assert t.snapshot().eta_s == pytest.approx(35)
    assert t.snapshot().fraction == pytest.approx(5 / 40)
    t.on_phase(1, "enlarging")
    clock.now += 5  # the whole first step done (half) in 10 s
    assert t.snapshot().eta_s == pytest.approx(10)


@pytest.mark.parametrize("iteration, known", [(2, False), (3, True)])
def test_with_under_one_percent_done_there_is_no_guess(iteration, known):
    clock = Clock()
    t = tracker(clock, steps=3, num_epochs=100)  # 3 iterations of 300: exactly 1 %
    t.on_step(1, iteration, 0.5, 1e-3)
    clock.now += 3
    p = t.snapshot()
    assert (p.eta_s is not None) is known
    if known:
        assert p.eta_s == pytest.approx(3 * 99)
    else:
        assert p.fraction == 0.0


def test_with_a_budget_the_time_left_is_the_budget_left_then_none_once_spent():
    clock = Clock()
    t = tracker(clock, budget_s=20.0)
    t.on_step(1, 1, 0.5, 1e-3)
    clock.now += 5
    assert t.snapshot().eta_s == pytest.approx(15) and t.snapshot().fraction == pytest.approx(0.25)
    clock.now += 20  # past the budget with nothing enlarged yet to go by
    p = t.snapshot()
    assert p.eta_s is None and p.fraction == pytest.approx(0.25)  # the bar holds where it was


@pytest.mark.parametrize("scale_factor, steps, measured_step, expected", [(2.0, 3, 1, 16 * 2.0), (2.0, 3, 2, 4 * 2.0),
                                                                            (3.0, 2, 1, 9 * 2.0)])
def test_the_last_enlargement_is_predicted_from_the_latest_measured(scale_factor, steps, measured_step, expected):
    clock = Clock()
    t = tracker(clock, steps=steps, budget_s=100.0, scale_factor=scale_factor)
    t.on_step(measured_step, 5, 0.5, 1e-3)
    t.on_phase(measured_step, "enlarging")
    clock.now += 2  # this enlargement takes 2 s; each later one makes scale_factor ** 2 times the pixels
    t.on_phase(measured_step + 1, "training")
    assert t.snapshot().eta_s == pytest.approx(98 + expected)


def test_a_hint_from_earlier_jobs_wins_over_the_measured_enlargement():
    clock = Clock()
    t = tracker(clock, budget_s=100.0, hint=7.0)
    t.on_step(1, 5, 0.5, 1e-3)
    t.on_phase(1, "enlarging")
    clock.now += 2
    t.on_phase(2, "training")
    assert t.snapshot().eta_s == pytest.approx(98 + 7)


def test_during_the_last_enlargement_the_time_left_counts_down_to_none():
    clock = Clock()
    t = tracker(clock, steps=2, budget_s=10.0, hint=6.0)
    t.on_step(2, 5, 0.5, 1e-3)
    assert t.last_enlarge_s() is None  # training, not enlarging
    t.on_phase(1, "enlarging")
    assert t.last_enlarge_s() is None  # not the last step
    t.on_phase(2, "enlarging")
    clock.now += 4
    assert t.last_enlarge_s() == pytest.approx(4) and t.snapshot().eta_s == pytest.approx(2)
    clock.now += 2
    p = t.snapshot()
    assert p.eta_s is None and p.fraction == 0.99


def test_the_bar_never_goes_back_and_never_claims_done_while_running():
    clock = Clock()
    t = tracker(clock, steps=1, num_epochs=100)
    t.on_step(1, 50, 0.5, 1e-3)
    clock.now += 10
    assert t.snapshot().fraction == pytest.approx(0.5)
    t.on_step(1, 40, 0.5, 1e-3)  # an estimate that says less done
    assert t.snapshot().fraction == pytest.approx(0.5)
    t.on_step(1, 100, 0.5, 1e-3)
    clock.now += 1000
    t.on_phase(1, "enlarging")
    assert t.snapshot().fraction <= 0.99


@pytest.mark.parametrize("done, fraction", [(True, 1.0), (False, pytest.approx(0.25))])
def test_a_finished_job_shows_all_it_did_and_no_time_left(done, fraction):
    clock = Clock()
    t = tracker(clock, budget_s=20.0)
    t.on_step(1, 9, 0.125, 1e-3)
    clock.now += 5
    p = final_progress(t, done)
    assert (p.step, p.steps, p.phase, p.iteration, p.iterations, p.loss) == (1, 3, "training", 9, 9, 0.125)
    assert p.fraction == fraction and p.eta_s == 0.0 and p.elapsed_s == pytest.approx(5)


def test_a_new_step_reported_straight_from_training_counts_the_last_steps_iterations_once():
    clock = Clock()
    t = tracker(clock, steps=3)
    t.on_step(1, 30, 0.5, 1e-3)
    t.on_step(2, 20, 0.5, 1e-3)  # no enlarging phase reported in between
    p = t.snapshot()
    assert (p.step, p.phase, p.iteration, p.iterations) == (2, "training", 20, 50)
    t.on_step(3, 5, 0.5, 1e-3)
    p = t.snapshot()
    assert (p.step, p.iteration, p.iterations) == (3, 5, 55)  # all three steps' iterations


def test_the_default_scale_is_2x_so_each_enlargement_makes_four_times_the_pixels():
    clock = Clock()
    t = ProgressTracker(2, 100, 100.0, clock=clock)
    t.on_step(1, 5, 0.5, 1e-3)
    t.on_phase(1, "enlarging")
    clock.now += 1
    t.on_phase(2, "training")
    assert t.snapshot().eta_s == pytest.approx(99 + 4)


def test_a_phase_reported_before_any_iteration_has_no_loss_yet():
    clock = Clock()
    t = tracker(clock)
    t.on_phase(1, "training")
    p = t.snapshot()
    assert (p.step, p.phase, p.loss, p.iteration) == (1, "training", None, 0)


def test_without_a_budget_the_last_enlargement_is_added_to_the_extrapolated_training():
    clock = Clock()
    t = tracker(clock, steps=2, num_epochs=100)
    t.on_step(1, 100, 0.5, 1e-3)
    clock.now += 8
    t.on_phase(1, "enlarging")
    clock.now += 2  # 2 s for step 1's enlargement: step 2's makes four times the pixels, 8 s
    t.on_phase(2, "training")
    # Half the training done in 10 s: 10 s more of it, then the 8 s enlargement.
    assert t.snapshot().eta_s == pytest.approx(10 + 8)


def test_the_countdown_of_the_last_enlargement_goes_below_a_second_before_it_runs_out():
    clock = Clock()
    t = tracker(clock, steps=1, budget_s=10.0, hint=3.0)
    t.on_step(1, 5, 0.5, 1e-3)
    t.on_phase(1, "enlarging")
    clock.now += 2.5
    assert t.snapshot().eta_s == pytest.approx(0.5)


@pytest.mark.parametrize("steps, step, phase", [(3, 1, "enlarging"), (1, 1, "training")])
def test_without_a_guess_only_the_last_enlargement_claims_99_percent(steps, step, phase):
    # The budget spent and nothing enlarged yet to go by: no estimate; the bar holds where it was.
    clock = Clock()
    t = tracker(clock, steps=steps, budget_s=10.0)
    t.on_step(step, 5, 0.5, 1e-3)
    clock.now += 5
    assert t.snapshot().fraction == pytest.approx(0.5)
    t.on_phase(step, phase)
    clock.now += 20
    p = t.snapshot()
    assert p.eta_s is None and p.fraction == pytest.approx(0.5)
