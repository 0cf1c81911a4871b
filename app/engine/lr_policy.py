"""The authors' learning-rate policy: decay when a line fitted to recent reconstruction errors stops falling."""

from __future__ import annotations

import warnings

import numpy as np

from app.engine.config import EngineConfig


class LearningRatePolicy:
    """Every `lr_decay_step` iterations, fit a line to the reconstruction errors of the last `lr_decay_range`
    iterations; when `-lr_decay_ratio * slope < std(slope)` the fall is not clearly real and the learning rate is
    multiplied by `lr_decay`. Training ends once the rate is below `lr_stop`. No decay happens within `min_iters`
    iterations of the previous one (or of the start)."""

    def __init__(self, config: EngineConfig):
        self.config = config
        self.lr = config.lr
        self.last_change = 0
        self.iterations: list[int] = []
        self.errors: list[float] = []
        self.decays: list[int] = []

    def record(self, iteration: int, error: float) -> None:
        self.iterations.append(iteration)
        self.errors.append(error)

    def slope_and_std(self, iteration: int) -> tuple[float, float] | None:
        """Slope of the error against iteration over the recent window and the slope's standard error."""
        start = iteration - self.config.lr_decay_range
        points = [(i, e) for i, e in zip(self.iterations, self.errors) if i > start]
        if len(points) < 4:  # numpy's covariance estimate needs more points than the degree + 2
            return None
        x, y = np.array(points, dtype=np.float64).T
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", np.exceptions.RankWarning)
            (slope, _), cov = np.polyfit(x, y, 1, cov=True)
        return float(slope), float(np.sqrt(max(cov[0, 0], 0.0)))

    def step(self, iteration: int) -> float:
        """Call after training iteration `iteration` (1-based); returns the learning rate to use next."""
        due = iteration % self.config.lr_decay_step == 0
        if due and iteration - self.last_change > self.config.min_iters:
            fit = self.slope_and_std(iteration)
            if fit is not None:
                slope, std = fit
                if -self.config.lr_decay_ratio * slope < std:
                    self.lr *= self.config.lr_decay
                    self.last_change = iteration
                    self.decays.append(iteration)
        return self.lr

    @property
    def finished(self) -> bool:
        return self.lr < self.config.lr_stop
