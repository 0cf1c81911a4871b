"""Shared fixtures of the engine tests: a tiny engine config and small synthetic images.

The web tests (tests/web/) have their own conftest with `app` and `client`; nothing here uses those names.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch
from hypothesis import settings
from PIL import Image

from app.engine.config import EngineConfig

# The test machine has two cores shared with other work; one torch thread avoids OpenMP spin-waiting
# under oversubscription, which makes tiny networks tens of times slower.
torch.set_num_threads(1)

# The prepared GPU check (.ci/gpu-check) runs the pipeline tests with the engine on CUDA.
TEST_DEVICE = os.environ.get("ZSSR_TEST_DEVICE", "cpu")

# Property-based tests: "ci" (the default) tries a few examples, the same ones on every run, so a failure in CI
# reproduces; "dev" (HYPOTHESIS_PROFILE=dev) tries many more, freshly drawn, and keeps the failures it finds.
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True, database=None,
                          print_blob=True)
settings.register_profile("dev", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def log_handlers_of_this_test_only():
    """A handler that a test's code adds (the CLIs' logging.basicConfig, the service's configure_logging, RQ's
    worker) writes to that test's captured stream, which pytest closes after it; a later test's logging would go
    through it ("Logging error: I/O operation on closed file"). Such handlers go with their test."""
    loggers = [logging.getLogger(), logging.getLogger("rq.worker")]
    before = [list(logger.handlers) for logger in loggers]
    yield
    for logger, kept in zip(loggers, before):
        for handler in logger.handlers[:]:
            if handler not in kept:
                logger.removeHandler(handler)


@pytest.fixture
def tiny_config() -> EngineConfig:
    """A network and schedule small enough that a whole x2 run takes well under a second on one CPU core."""
    return EngineConfig(
        model_depth=2, model_width=8, num_epochs=6, min_iters=0, crop_size=16, eval_every=2,
        lr_decay_step=4, lr_decay_range=8, patch_size=512, back_projection_iters=2, self_ensemble=False,
        noise_std=0.0, seed=0, device=TEST_DEVICE, num_threads=1, time_budget_s=None, channels_last=False,
        kernel=None, warm_start=None, compile=False, self_check_fallback=False)


def pattern(height: int, width: int, channels: int = 3) -> np.ndarray:
    """A deterministic, non-symmetric uint8 test picture (H, W, C): rings, stripes, a ramp and a block."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = np.hypot(y - 0.4 * height, x - 0.3 * width)
    planes = [0.5 + 0.4 * np.sin(0.9 * r),
              0.5 + 0.35 * np.sign(np.sin(0.7 * x + 0.2 * y)),
              0.15 + 0.7 * (x + 2 * y) / (width + 2 * height)]
    planes[2][: height // 3, : width // 4] = 0.9
    array = np.stack(planes[:channels], axis=-1)
    return np.clip(np.round(array * 255), 0, 255).astype(np.uint8)


@pytest.fixture
def make_image():
    """Factory: make_image(width, height, mode="RGB") -> a small PIL image of `pattern`."""

    def make(width: int, height: int, mode: str = "RGB") -> Image.Image:
        rgb = pattern(height, width)
        if mode == "RGB":
            return Image.fromarray(rgb)
        if mode == "L":
            return Image.fromarray(rgb[:, :, 0])
        if mode == "RGBA":
            y, x = np.mgrid[0:height, 0:width]
            alpha = np.clip(255 * (x + y) / (width + height - 2), 0, 255).astype(np.uint8)
            return Image.fromarray(np.dstack([rgb, alpha]))
        raise ValueError(mode)

    return make


@pytest.fixture
def rgb_image(make_image) -> Image.Image:
    return make_image(24, 18)


@pytest.fixture
def gray_image(make_image) -> Image.Image:
    return make_image(21, 14, "L")


@pytest.fixture
def rgba_image(make_image) -> Image.Image:
    return make_image(20, 15, "RGBA")
