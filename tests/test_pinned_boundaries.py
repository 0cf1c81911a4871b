"""One-line slips at boundaries that the rest of the suite let through (issue 20), each pinned by an assertion: the
learning-rate fit's window, the self-check's tie, the training crop's last row and column, and the Redis queue
name's whole-string check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.config import ServiceConfig
from app.engine import bicubic_resize, super_resolve
from app.engine.config import EngineConfig
from app.engine.lr_policy import LearningRatePolicy
from app.engine.pairs import FatherPool
from app.errors import ConfigError

# The shipped config's schedule (config.json): errors every 20 iterations, a check every 30, a window of 100.
SHIPPED = dict(lr=1e-3, lr_decay=0.1, lr_decay_ratio=1.5, lr_decay_range=100, lr_decay_step=30, eval_every=20,
               min_iters=100)


def test_the_fit_window_leaves_out_the_point_exactly_lr_decay_range_back():
    # At iteration 120 the window is (20, 120]: the errors at 40..120, five points; the one at 20 is outside.
    policy = LearningRatePolicy(EngineConfig(**SHIPPED))
    errors = {20: 0.9, 40: 0.30, 60: 0.26, 80: 0.27, 100: 0.21, 120: 0.22}
    for iteration, error in errors.items():
        policy.record(iteration, error)
    x = np.array([40, 60, 80, 100, 120], dtype=np.float64)
    y = np.array([errors[int(i)] for i in x])
    slope, std = policy.slope_and_std(120)
    assert slope == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-12)
    residuals = y - np.polyval(np.polyfit(x, y, 1), x)
    assert std == pytest.approx(np.sqrt(residuals @ residuals / (len(x) - 4) / ((x - x.mean()) @ (x - x.mean()))),
                                rel=1e-9)
    # Four points inside (the fifth exactly at the window's far end): too few to fit.
    short = LearningRatePolicy(EngineConfig(**SHIPPED))
    for iteration in (20, 40, 60, 80, 100):
        short.record(iteration, 0.1)
    assert short.slope_and_std(120) is None


def test_the_point_exactly_lr_decay_range_back_does_not_decide_a_decay():
    # A plateau over the window decays at iteration 120; an old, much higher error at iteration 20 (exactly
    # lr_decay_range back) would make the window look like a steep fall and hold the rate.
    policy = LearningRatePolicy(EngineConfig(**SHIPPED))
    for iteration in range(1, 121):
        if iteration % 20 == 0:
            policy.record(iteration, 0.9 if iteration == 20 else 0.05 + 0.002 * (-1) ** (iteration // 20))
        policy.step(iteration)
    assert policy.decays == [120]
    assert policy.lr == pytest.approx(1e-4)


def test_a_self_check_with_exactly_no_gain_falls_back_to_bicubic(tiny_config, rgb_image):
    # A budget spent before the first step trains nothing: the untrained network (zero last layer) is bicubic
    # exactly, so the self-check finds a gain of exactly 0 dB, which is no gain: the result is bicubic's.
    config = tiny_config.replace(time_budget_s=1e-9, self_check_fallback=True)
    result = super_resolve(rgb_image, config)
    assert result.iterations == 0
    assert result.self_check["zssr_db"] == result.self_check["bicubic_db"]
    assert result.fallback
    np.testing.assert_array_equal(np.asarray(result.image), np.asarray(bicubic_resize(rgb_image, 2.0)))


def test_training_crops_reach_every_offset_of_the_father_the_last_row_and_column_included():
    # Each pixel of the father holds its own position, so a crop's first pixel says where the crop was taken.
    height, width, side = 7, 10, 4
    father = torch.arange(height * width, dtype=torch.float64).reshape(1, 1, height, width)
    pool = FatherPool([father], np.array([1.0]))
    rng = np.random.default_rng(0)
    rows, columns = set(), set()
    for _ in range(300):
        crop = pool.sample(rng, side, batch_size=1, multiple=1, augment=False)
        y, x = divmod(int(crop[0, 0, 0, 0]), width)
        torch.testing.assert_close(crop, father[..., y:y + side, x:x + side], rtol=0, atol=0)
        rows.add(y)
        columns.add(x)
    assert rows == set(range(height - side + 1))
    assert columns == set(range(width - side + 1))


@pytest.mark.parametrize("name", ["zssr:jobs", "zssr jobs", "zssr*", "zssr\n", "a" * 64 + "b", ":", "*", ""])
def test_a_redis_queue_name_is_checked_whole(name):
    # A name that only starts well (a prefix match) would let "zssr:jobs" or "zssr*" through, and one service's
    # keys could collide with, or a pattern match, another's on a shared Redis.
    with pytest.raises(ConfigError) as caught:
        ServiceConfig(redis_queue=name)
    assert caught.value.key == "redis_queue"


@pytest.mark.parametrize("name", ["zssr", "zssr-photos_2.eu", "a" * 64, "Q"])
def test_a_redis_queue_name_of_letters_digits_and_dots_is_accepted(name):
    assert ServiceConfig(redis_queue=name).redis_queue == name


def test_a_photo_smaller_than_the_scale_on_a_side_trains_and_enlarges(tiny_config, make_image):
    # A 6x5 photo at x8: a training crop a whole number of 8 pixels wide would overrun it (it crashed drawing
    # an offset); the father is taken whole instead.
    photo = make_image(6, 5)
    result = super_resolve(photo, tiny_config.replace(scale_factor=8.0, num_epochs=3))
    assert result.iterations == 3 and result.image.size == (48, 40)
