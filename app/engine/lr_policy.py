"""The authors' learning-rate policy: decay when a line fitted to recent reconstruction errors stops falling."""

from __future__ import annotations

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
        """Least-squares slope of the error against iteration over the last `lr_decay_range` iterations, and the
        slope's standard error as the authors' NumPy computed it: the residual variance divided by n - 4.

        (`np.polyfit(..., cov=True)` divided by n - 4 until NumPy 1.16 and by n - 2 since; on the 5-6 points of
        a window that is a std sqrt(3) or sqrt(2) smaller, and decays that come late.) None below 5 points.
        """
        start = iteration - self.config.lr_decay_range
        points = [(i, e) for i, e in zip(self.iterations, self.errors) if i > start]
        if len(points) < 5:
            return None
        x, y = np.array(points, dtype=np.float64).T
        dx = x - x.mean()
        sxx = float(dx @ dx)
        slope = float(dx @ (y - y.mean())) / sxx
        residuals = y - y.mean() - slope * dx
        variance = float(residuals @ residuals) / (len(x) - 4)
        return slope, float(np.sqrt(variance / sxx))

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
