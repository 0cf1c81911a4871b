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

    The fraction done is the larger of two estimates: iterations against `num_epochs` per step (training often
    stops earlier, when the learning rate has decayed) and elapsed time against the time budget (the engine
    stops training when it is spent, and only the last enlargement comes after it). The ETA extrapolates the
    elapsed time by that fraction.
    """

    def __init__(self, steps: int, num_epochs: int, budget_s: float | None,
                 clock: Callable[[], float] = time.monotonic):
        self._steps = steps
        self._num_epochs = num_epochs
        self._budget_s = budget_s
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._step = 0
        self._phase: str | None = None
        self._iteration = 0
        self._done_iterations = 0  # iterations of the gradual steps before the current one
        self._loss: float | None = None

    def on_phase(self, step: int, phase: str) -> None:
        with self._lock:
            if step != self._step:
                self._done_iterations += self._iteration
                self._iteration = 0
            self._step, self._phase = step, phase

    def on_step(self, step: int, iteration: int, loss: float, lr: float) -> None:
        if step != self._step or self._phase != "training":
            self.on_phase(step, "training")
        with self._lock:
            self._iteration = iteration
            self._loss = float(loss)

    def snapshot(self) -> Progress:
        with self._lock:
            elapsed = self._clock() - self._started
            if self._step == 0:
                return Progress(steps=self._steps, elapsed_s=elapsed)
            done_steps = self._step - (0 if self._phase == "enlarging" else 1)
            within = 0.0 if self._phase == "enlarging" else min(1.0, self._iteration / self._num_epochs)
            fraction = (done_steps + within) / self._steps
            if self._budget_s:
                fraction = max(fraction, elapsed / self._budget_s)
            fraction = min(fraction, _MOST_WHILE_RUNNING)
            eta = elapsed * (1.0 - fraction) / fraction if fraction >= 0.01 else None
            return Progress(step=self._step, steps=self._steps, phase=self._phase, iteration=self._iteration,
                            iterations=self._done_iterations + self._iteration, loss=self._loss,
                            fraction=fraction, elapsed_s=elapsed, eta_s=eta)
