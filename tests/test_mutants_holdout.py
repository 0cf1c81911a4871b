"""Behaviours of app/engine/holdout.py that mutation testing found unpinned: a step is judged on sons made exactly
as its training sons are (its scale, its compression), and the judgement's report is rounded to 0.001 dB."""

from __future__ import annotations

import pytest
import torch

from app.engine.holdout import MIN_STRIP, HeldOut, Judgement, judge
from app.engine.pairs import make_downscale


class Sharpen(torch.nn.Module):
    """A stand-in network: its input plus `gain` times its own high-pass (enough to score differently per son)."""

    def __init__(self, gain: float):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(gain))

    def forward(self, x):
        blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        return x + self.gain * (x - blurred)


def quantise(x: torch.Tensor) -> torch.Tensor:
    """A compression stand-in: 8 grey levels."""
    return (x * 7).round() / 7


@pytest.fixture
def held_out() -> HeldOut:
    # An odd-sized strip: its son (17 x 23) enlarged back is only right with the step's own scale factor.
    strip = torch.rand(1, 3, 33, 45, generator=torch.Generator().manual_seed(4))
    return HeldOut(strip, strip, "top")


@pytest.mark.parametrize("compress", [None, quantise])
def test_both_weights_are_judged_on_sons_made_as_the_steps_training_makes_them(held_out, compress):
    downscale = make_downscale(2.0, None)
    net = Sharpen(0.8)
    before = {"gain": torch.tensor(0.2)}
    judgement = judge(net, net, before, held_out, 3, 2.0, downscale, compress)
    assert judgement.adapted_db == pytest.approx(held_out.psnr(Sharpen(0.8), 2.0, downscale, compress), abs=1e-9)
    assert judgement.warm_start_db == pytest.approx(held_out.psnr(Sharpen(0.2), 2.0, downscale, compress),
                                                    abs=1e-9)


def test_the_sons_scale_and_compression_change_the_score(held_out):
    # What makes the test above able to tell: another scale or no compression scores otherwise.
    downscale = make_downscale(2.0, None)
    net = Sharpen(0.8)
    with_all = held_out.psnr(net, 2.0, downscale, quantise)
    assert held_out.psnr(net, 2.0, downscale, None) != pytest.approx(with_all, abs=1e-6)
    assert held_out.psnr(net, None, downscale, quantise) != pytest.approx(with_all, abs=1e-6)


def test_the_report_is_rounded_to_a_thousandth_of_a_db():
    judgement = Judgement(1, 30.12345, 29.98765)
    assert judgement.describe() == {"step": 1, "adapted_db": 30.123, "warm_start_db": 29.988, "gain_db": 0.136,
                                    "kept": True}


def test_a_strip_may_run_along_a_side_exactly_min_strip_long():
    # 24 px wide: too narrow to spare a strip across, but a strip along it (top or bottom) is long enough.
    image = torch.rand(1, 3, 80, MIN_STRIP, generator=torch.Generator().manual_seed(5))
    held_out = HeldOut.split(image)
    assert held_out is not None and held_out.edge in ("top", "bottom")
    assert held_out.strip.shape[-2:] == (MIN_STRIP, MIN_STRIP)
    assert HeldOut.split(image[..., :MIN_STRIP - 1]) is None
