"""Turns the engine's step and phase callbacks into a job's Progress: gradual step k of n, iteration, ETA."""

from __future__ import annotations

import threading
import time
from typing import Callable

from app.jobs.model import Progress

# A running job never claims more than this, so that 100% means "done" and nothing else.
_MOST_WHILE_RUNNING = 0.99


class ProgressTracker:
    """Thread-safe: the engine's thread reports, any thread reads `snapshot()`.

    The time left is the training time left plus the last enlargement. With a time budget, training ends
    when the budget is spent (the budget also covers the enlargements of the steps before the last). Without
    one, the training time left is extrapolated from iterations against `num_epochs` per step (an upper
    bound: training usually stops earlier, once the learning rate has decayed). Each enlargement makes
    `scale_factor`**2 times the pixels of the one before: the last one is taken from `last_enlarge_hint_s`
    (what the runner learned from earlier jobs) or else predicted from the latest one measured in this job;
    until then it counts as nothing.
    """

    def __init__(self, steps: int, num_epochs: int, budget_s: float | None, scale_factor: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, last_enlarge_hint_s: float | None = None):
        self._steps = steps
        self._num_epochs = num_epochs
        self._budget_s = budget_s
        self._area = scale_factor ** 2
        self._hint = last_enlarge_hint_s
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._step = 0
        self._phase: str | None = None
        self._phase_started = self._started
        self._enlarged: tuple[int, float] | None = None  # (step, seconds) of the latest enlargement measured
        self._iteration = 0
        self._done_iterations = 0  # iterations of the gradual steps before the current one
        self._loss: float | None = None
        self._fraction = 0.0  # the most ever reported

    def on_phase(self, step: int, phase: str) -> None:
        with self._lock:
            now = self._clock()
            if self._phase == "enlarging":
                self._enlarged = (self._step, now - self._phase_started)
            if step != self._step:
                self._done_iterations += self._iteration
                self._iteration = 0
            self._step, self._phase, self._phase_started = step, phase, now

    def on_step(self, step: int, iteration: int, loss: float, lr: float) -> None:
        if step != self._step or self._phase != "training":
            self.on_phase(step, "training")
        with self._lock:
            self._iteration = iteration
            self._loss = float(loss)

    def last_enlarge_s(self) -> float | None:
        """How long the last step's enlargement has taken so far (None before it starts)."""
        with self._lock:
            if self._phase == "enlarging" and self._step == self._steps:
                return self._clock() - self._phase_started
            return None

    def snapshot(self) -> Progress:
        with self._lock:
            now = self._clock()
            elapsed = now - self._started
            if self._step == 0:
                return Progress(steps=self._steps, elapsed_s=elapsed)
            eta = self._eta(now, elapsed)
            if eta is None:
                fraction = _MOST_WHILE_RUNNING if self._phase == "enlarging" and self._step == self._steps else 0.0
            else:
                fraction = elapsed / (elapsed + eta)
            # A new estimate (an enlargement measured) may be longer than the last: the bar waits, never goes back.
            self._fraction = min(max(self._fraction, fraction), _MOST_WHILE_RUNNING)
            return Progress(step=self._step, steps=self._steps, phase=self._phase, iteration=self._iteration,
                            iterations=self._done_iterations + self._iteration, loss=self._loss,
                            fraction=self._fraction, elapsed_s=elapsed, eta_s=eta)

    def _eta(self, now: float, elapsed: float) -> float | None:
        """Seconds left, or None while there is nothing to base a guess on (or the guess has run out)."""
        last_enlarge = 0.0
        if self._hint is not None:
            last_enlarge = self._hint
        elif self._enlarged is not None:
            measured_step, seconds = self._enlarged
            last_enlarge = seconds * self._area ** (self._steps - measured_step)
        if self._phase == "enlarging" and self._step == self._steps:
            left = last_enlarge - (now - self._phase_started)
        elif self._budget_s:
            left = max(0.0, self._budget_s - elapsed) + last_enlarge
        else:
            done = (self._step - 1 + (1.0 if self._phase == "enlarging" else self._iteration / self._num_epochs))
            done /= self._steps
            if done < 0.01:
                return None
            left = elapsed * (1.0 - done) / done + last_enlarge
        return left if left > 0 else None


def final_progress(tracker: ProgressTracker, done: bool) -> Progress:
    """A finished job's last progress: full when it is done, else where it stopped; no time left either way."""
    last = tracker.snapshot()
    return Progress(step=last.step, steps=last.steps, phase=last.phase, iteration=last.iteration,
                    iterations=last.iterations, loss=last.loss, fraction=1.0 if done else last.fraction,
                    elapsed_s=last.elapsed_s, eta_s=0.0)
