"""Behaviours of app/engine/holdout.py that mutation testing found unpinned: a step is judged on sons made exactly
as its training sons are (its scale, its compression), and the judgement's report is rounded to 0.001 dB."""

from __future__ import annotations

import pytest
import torch

from app.engine.holdout import MAX_STRIP_LENGTH, MIN_STRIP, HeldOut, Judgement, _most_detailed_stretch, judge
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


def flat_with_texture(height: int, width: int, rows: slice, cols: slice, seed: int = 1) -> torch.Tensor:
    image = torch.full((1, 3, height, width), 0.5)
    patch = image[..., rows, cols]
    image[..., rows, cols] = torch.rand(patch.shape, generator=torch.Generator().manual_seed(seed))
    return image


@pytest.mark.parametrize("edge, rows, cols", [("top", slice(0, 10), slice(20, 60)),
                                              ("bottom", slice(86, 96), slice(20, 60)),
                                              ("left", slice(30, 70), slice(0, 10)),
                                              ("right", slice(30, 70), slice(110, 120))])
def test_the_edge_with_the_detail_is_held_out_and_the_rest_trained_on(edge, rows, cols):
    image = flat_with_texture(96, 120, rows, cols)
    held_out = HeldOut.split(image)
    assert held_out.edge == edge
    thickness = MIN_STRIP  # 12.5 % of 96 or 120 is under MIN_STRIP
    expected = {"top": (image[..., :thickness, :], image[..., thickness:, :]),
                "bottom": (image[..., -thickness:, :], image[..., :-thickness, :]),
                "left": (image[..., :thickness], image[..., thickness:]),
                "right": (image[..., -thickness:], image[..., :-thickness])}[edge]
    assert torch.equal(held_out.strip, expected[0]) and torch.equal(held_out.train, expected[1])


def test_on_a_tie_the_first_edge_in_order_is_held_out():
    # 40 px high: no strip across the top or bottom leaves 32 rows to train on; left and right tie on a flat image.
    assert HeldOut.split(torch.full((1, 3, 40, 80), 0.5)).edge == "left"
    assert HeldOut.split(torch.full((1, 3, 96, 96), 0.5)).edge == "top"


@pytest.mark.parametrize("length, cols", [(600, slice(128, 384)),  # a window's length on a quarter step
                                          (600, slice(0, 40)),  # at the very start
                                          (600, slice(570, 600)),  # at the very end
                                          (575, slice(545, 575)),  # the end of a length off the quarter steps
                                          (300, slice(270, 300)),  # a strip hardly longer than a window
                                          (321, slice(64, 320))])  # the last quarter step, a pixel from the end
def test_a_long_strip_keeps_a_full_window_holding_its_textured_stretch(length, cols):
    strip = flat_with_texture(MIN_STRIP, length, slice(0, MIN_STRIP), cols)
    stretch = _most_detailed_stretch(strip)
    assert stretch.shape[-2:] == (MIN_STRIP, MAX_STRIP_LENGTH)
    assert int((stretch != 0.5).sum()) == int((strip != 0.5).sum()) > 0


def test_a_tall_strip_is_cut_along_its_height():
    strip = flat_with_texture(600, MIN_STRIP, slice(400, 460), slice(0, MIN_STRIP))
    stretch = _most_detailed_stretch(strip)
    assert stretch.shape[-2:] == (MAX_STRIP_LENGTH, MIN_STRIP)
    assert int((stretch != 0.5).sum()) == int((strip != 0.5).sum()) > 0
    image = torch.full((1, 3, 600, 64), 0.5)
    image[..., :, :MIN_STRIP] = strip
    held_out = HeldOut.split(image)
    assert held_out.edge == "left" and torch.equal(held_out.strip, stretch)
