"""Inference: tiling equals the whole image, the self-ensemble and its median, back-projection."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from app.engine.config import EngineConfig
from app.engine.dihedral import DIHEDRAL
from app.engine.infer import back_project, enlarge, self_ensemble, tile_forward
from app.engine.network import ZSSRNet
from app.engine.pairs import make_downscale, upscale
from app.engine.resize import imresize


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class PositionalBias(nn.Module):
    """Adds a pattern fixed to the input's own rows and columns, so each dihedral view gets a different answer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        i = torch.arange(h, dtype=x.dtype)[:, None]
        j = torch.arange(w, dtype=x.dtype)[None, :]
        return x + 0.15 * torch.sin(0.8 * i + 0.3 * j + 0.05 * i * j)


def smooth_lr(h: int = 9, w: int = 14, seed: int = 0) -> torch.Tensor:
    """(1, 3, h, w) in [0.2, 0.8]: a smooth random image whose bicubic enlargement stays inside [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 4, 5, generator=g, dtype=torch.float64)
    return (0.2 + 0.6 * imresize(coarse, out_size=(h, w))).clamp(0.2, 0.8)


def random_net(depth: int = 3, width: int = 8, seed: int = 0, fold: int = 1) -> ZSSRNet:
    torch.manual_seed(seed)
    net = ZSSRNet(EngineConfig(model_depth=depth, model_width=width, model_fold=fold)).double().eval()
    with torch.no_grad():
        # The last layer starts at zero (an untrained net is the identity); give it a residual that matters.
        torch.nn.init.normal_(net.layers[-1].weight, 0.0, 0.5)
    return net


def test_self_ensemble_of_identity_returns_the_input():
    x = torch.rand(1, 3, 5, 8)
    outputs = self_ensemble(Identity(), x)
    assert len(outputs) == 8
    for out in outputs:
        assert torch.equal(out, x)
    single = self_ensemble(Identity(), x, enabled=False)
    assert len(single) == 1 and torch.equal(single[0], x)


def test_self_ensemble_maps_each_view_back():
    x = torch.rand(1, 1, 6, 9, dtype=torch.float64)
    outputs = self_ensemble(PositionalBias(), x)
    for out in outputs:
        assert out.shape == x.shape
    assert not torch.equal(outputs[0], outputs[1])
    forward, inverse = DIHEDRAL[5]
    torch.testing.assert_close(outputs[5], inverse(PositionalBias()(forward(x))))
    assert torch.equal(self_ensemble(PositionalBias(), x, enabled=False)[0], PositionalBias()(x))


@pytest.mark.parametrize("ensemble", [True, False])
def test_enlarge_with_identity_network_is_bicubic(ensemble):
    lr = smooth_lr()
    sr = enlarge(Identity(), lr, 2.0, make_downscale(2.0, None), patch_size=512, halo=0, ensemble=ensemble,
                 back_projection_iters=0)
    assert sr.shape == (1, 3, 18, 28)
    torch.testing.assert_close(sr, imresize(lr, 2.0).clamp(0, 1), atol=1e-9, rtol=0)


def test_back_projection_makes_the_identity_result_consistent_with_the_input():
    lr = smooth_lr(10, 13, seed=1)
    downscale = make_downscale(2.0, None)
    plain = enlarge(Identity(), lr, 2.0, downscale, patch_size=512, halo=0, ensemble=True,
                    back_projection_iters=0)
    projected = enlarge(Identity(), lr, 2.0, downscale, patch_size=512, halo=0, ensemble=True,
                        back_projection_iters=10)
    before = (downscale(plain) - lr).abs().max().item()
    after = (downscale(projected) - lr).abs().max().item()
    assert before > 1e-3  # bicubic up then down is not the identity
    assert after < 1e-3 and after < before / 10


def test_back_projection_after_the_median_makes_the_ensemble_consistent():
    lr = smooth_lr(10, 13, seed=6)
    downscale = make_downscale(2.0, None)
    sr = enlarge(PositionalBias(), lr, 2.0, downscale, patch_size=512, halo=0, ensemble=True,
                 back_projection_iters=10)
    plain = enlarge(PositionalBias(), lr, 2.0, downscale, patch_size=512, halo=0, ensemble=True,
                    back_projection_iters=0)
    assert (downscale(plain) - lr).abs().max() > 0.05
    assert (downscale(sr) - lr).abs().max() < 1e-3


@pytest.mark.parametrize("patch_size", [12, 16, 25])
@pytest.mark.parametrize("shape", [(45, 37), (10, 41), (33, 16)])
def test_tiled_equals_untiled(patch_size, shape):
    net = random_net()
    x = torch.rand(1, 3, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(patch_size))
    whole = net(x)
    tiled = tile_forward(net, x, patch_size, net.receptive_radius)
    assert tiled.shape == whole.shape
    torch.testing.assert_close(tiled, whole, atol=1e-4, rtol=0)
    assert (whole - x).abs().max() > 1e-2  # the residual is not negligible, so a seam would show


@pytest.mark.parametrize("fold", [2, 3])
@pytest.mark.parametrize("shape", [(45, 37), (31, 64)])
def test_tiled_equals_untiled_for_a_folded_network(fold, shape):
    net = random_net(fold=fold)
    x = torch.rand(1, 3, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(fold))
    whole = net(x)
    tiled = tile_forward(net, x, 24 + 2 * fold, net.receptive_radius, align=fold)
    torch.testing.assert_close(tiled, whole, atol=1e-10, rtol=0)
    assert (whole - x).abs().max() > 1e-2


def test_a_folded_network_tiled_off_its_block_grid_leaves_seams():
    """Windows that start between blocks fold other pixels together than the whole image does."""
    net = random_net(fold=2)
    x = torch.rand(1, 3, 45, 37, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert (tile_forward(net, x, 25, net.receptive_radius) - net(x)).abs().max() > 1e-4


def test_enlarge_tiles_a_folded_network_on_its_block_grid():
    net = random_net(fold=2)
    lr = torch.rand(1, 3, 23, 19, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    kwargs = dict(halo=net.receptive_radius, ensemble=True, back_projection_iters=2)
    downscale = make_downscale(2.0, None)
    whole = enlarge(net, lr, 2.0, downscale, patch_size=512, **kwargs)
    tiled = enlarge(net, lr, 2.0, downscale, patch_size=24, align=2, **kwargs)
    torch.testing.assert_close(tiled, whole, atol=1e-10, rtol=0)


def test_tiling_without_enough_halo_leaves_seams():
    """The halo is what makes tiling exact: a zero halo with the same windows does differ from the whole."""
    net = random_net()
    x = torch.rand(1, 3, 40, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert (tile_forward(net, x, 16, 0) - net(x)).abs().max() > 1e-4


def test_tile_forward_refuses_a_patch_within_the_receptive_field():
    net = random_net()
    with pytest.raises(ValueError, match="receptive radius"):
        tile_forward(net, torch.rand(1, 3, 20, 20, dtype=torch.float64), 6, 3)


def doubling_recorder(windows: list):
    """A stand-in network that doubles its input and records each window's (H, W)."""

    def forward(x):
        windows.append(tuple(x.shape[-2:]))
        return x * 2

    return forward


@pytest.mark.parametrize("shape", [(724, 1000), (513, 300), (1030, 1030)])
def test_tiles_fit_the_patch_and_overlap_only_by_the_halo(shape):
    """Windows never exceed `patch_size`, and the work beyond the image itself is only the halo margins."""
    windows = []
    x = torch.rand(1, 1, *shape)
    assert torch.equal(tile_forward(doubling_recorder(windows), x, 512, 8), x * 2)
    assert all(h <= 512 and w <= 512 for h, w in windows)
    rows = -(-(shape[0]) // 496)
    cols = -(-(shape[1]) // 496)
    assert len(windows) == rows * cols
    margin = (shape[0] + 2 * 8 * (rows - 1)) * (shape[1] + 2 * 8 * (cols - 1))
    assert sum(h * w for h, w in windows) == margin


def test_tile_forward_on_an_image_smaller_than_a_tile_is_one_call():
    calls = []

    def forward(x):
        calls.append(x.shape)
        return x * 2

    x = torch.rand(1, 3, 10, 12)
    assert torch.equal(tile_forward(forward, x, 12, 2), x * 2)
    assert calls == [x.shape]


@pytest.mark.parametrize("ensemble", [True, False])
def test_enlarge_tiled_equals_untiled(ensemble):
    net = random_net(depth=3)
    lr = smooth_lr(15, 21, seed=2)
    downscale = make_downscale(2.0, None)
    kwargs = dict(halo=net.receptive_radius, ensemble=ensemble, back_projection_iters=2)
    whole = enlarge(net, lr, 2.0, downscale, patch_size=512, **kwargs)
    tiled = enlarge(net, lr, 2.0, downscale, patch_size=14, **kwargs)
    assert whole.shape == (1, 3, 30, 42)
    torch.testing.assert_close(tiled, whole, atol=1e-4, rtol=0)


def test_ensemble_output_is_the_true_median_of_the_eight():
    lr = smooth_lr(8, 11, seed=3)
    net = PositionalBias()
    sr = enlarge(net, lr, 2.0, make_downscale(2.0, None), patch_size=512, halo=0, ensemble=True,
                 back_projection_iters=0)
    views = []
    for forward, inverse in DIHEDRAL:
        view = forward(lr)
        interpolated = imresize(view, 2.0)
        views.append(inverse(net(interpolated).clamp(0, 1)).numpy())
    views = np.stack(views)
    assert np.ptp(views, axis=0).max() > 0.05  # the eight answers really differ
    expected = np.median(views, axis=0)  # numpy's median: the mean of the two middle values of eight
    np.testing.assert_allclose(sr.numpy(), expected, atol=1e-9)
    assert np.abs(views.mean(axis=0) - expected).max() > 1e-3  # and it is not the mean


def test_enlarge_without_ensemble_uses_the_plain_view():
    lr = smooth_lr(8, 11, seed=4)
    net = PositionalBias()
    sr = enlarge(net, lr, 2.0, make_downscale(2.0, None), patch_size=512, halo=0, ensemble=False,
                 back_projection_iters=0)
    torch.testing.assert_close(sr, net(imresize(lr, 2.0)).clamp(0, 1), atol=1e-9, rtol=0)


@pytest.mark.parametrize("scale", [2.0, 3.0, 1.5])
def test_enlarge_output_size_for_non_integer_and_odd_sizes(scale):
    lr = smooth_lr(7, 10)
    sr = enlarge(Identity(), lr, scale, make_downscale(scale, None), patch_size=512, halo=0, ensemble=True,
                 back_projection_iters=1)
    assert sr.shape[-2:] == (math.ceil(7 * scale - 1e-9), math.ceil(10 * scale - 1e-9))


def test_back_project_reduces_the_reconstruction_error():
    g = torch.Generator().manual_seed(5)
    hr = (0.2 + 0.6 * imresize(torch.rand(1, 3, 6, 8, generator=g, dtype=torch.float64), out_size=(24, 32)))
    downscale = make_downscale(2.0, None)
    lr = downscale(hr)
    guess = (upscale(lr, 2.0, (24, 32)) + 0.05 * torch.randn(1, 3, 24, 32, generator=g, dtype=torch.float64))
    guess = guess.clamp(0, 1)

    def error(sr):
        return (downscale(sr) - lr).pow(2).mean().item()

    errors = [error(back_project(guess.clone(), lr, 2.0, downscale, n)) for n in (0, 1, 3, 10)]
    assert errors[0] == pytest.approx(error(guess))
    assert errors[1] < errors[0] and errors[2] < errors[1] and errors[3] < errors[2]
    assert errors[3] < errors[0] / 20
    # It also moves the guess towards the true HR image, not just anywhere consistent.
    projected = back_project(guess.clone(), lr, 2.0, downscale, 10)
    assert (projected - hr).pow(2).mean() < (guess - hr).pow(2).mean()
    assert projected.min() >= 0 and projected.max() <= 1


def test_back_project_with_zero_iterations_is_the_identity():
    sr = torch.rand(1, 3, 8, 8)
    assert torch.equal(back_project(sr, torch.rand(1, 3, 4, 4), 2.0, make_downscale(2.0, None), 0), sr)


def shifted_back(x: torch.Tensor, d: int, dim: int) -> torch.Tensor:
    """Reference for the grid shift: pixel i takes pixel min(i + d, n - 1) along `dim`."""
    n = x.shape[dim]
    return torch.stack([x.select(dim, min(i + d, n - 1)) for i in range(n)], dim=dim)


@pytest.mark.parametrize("grid_shift", [1, 2])
def test_self_ensemble_moves_each_reversed_view_back_by_the_grid_shift(grid_shift):
    # Along an axis a transform counts backwards, its output comes back `grid_shift` pixels late and is moved
    # back, the last pixel repeated; an axis counted forwards is left alone.
    x = torch.rand(1, 1, 6, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    net = PositionalBias()
    outputs = self_ensemble(net, x, grid_shift=grid_shift)
    flips = [(False, False), (False, True), (True, True), (True, False),
             (False, True), (False, False), (True, False), (True, True)]
    for index, ((forward, inverse), (flip_y, flip_x)) in enumerate(zip(DIHEDRAL, flips)):
        expected = inverse(net(forward(x)))
        expected = shifted_back(expected, grid_shift, 2) if flip_y else expected
        expected = shifted_back(expected, grid_shift, 3) if flip_x else expected
        assert torch.equal(outputs[index], expected), index
    assert torch.equal(outputs[0], net(x))
    # Only the chosen transforms, each still shifted as its own axes say.
    assert [torch.equal(a, b) for a, b in zip(self_ensemble(net, x, transforms=(2, 5), grid_shift=grid_shift),
                                               (outputs[2], outputs[5]))] == [True, True]
    assert torch.equal(self_ensemble(net, x, enabled=False, grid_shift=grid_shift)[0], net(x))
    # On (C, h, w) as on (N, C, h, w): the shifts count from the last two dims.
    for index, out in enumerate(self_ensemble(net, x[0], grid_shift=grid_shift)):
        assert torch.equal(out, outputs[index][0]), index


@pytest.mark.parametrize("shape, windows", [((512, 1000), [(512, 341), (512, 349), (512, 342)]),
                                            ((990, 300), [(503, 300), (503, 300)])])
def test_tiles_are_the_fewest_that_fit(shape, windows):
    # An axis exactly patch_size long is one window; 990 rows need two windows of 495 kept rows plus the halo
    # (496 kept rows each would fit), not three.
    seen = []
    x = torch.rand(1, 1, *shape)
    assert torch.equal(tile_forward(doubling_recorder(seen), x, 512, 8), x * 2)
    assert seen == windows


def edges_lr() -> torch.Tensor:
    """(1, 1, 6, 6) of hard 0/1 edges, whose bicubic enlargement overshoots [0, 1]."""
    return (torch.arange(36, dtype=torch.float64).reshape(1, 1, 6, 6) % 3 == 0).double()


def test_back_project_keeps_values_in_0_1_where_bicubic_overshoots():
    lr = edges_lr()
    downscale = make_downscale(2.0, None)
    overshoot = upscale(lr, 2.0, (12, 12))
    assert overshoot.min() < -0.05 and overshoot.max() > 1.05
    for iterations in (1, 3):
        sr = back_project(torch.full((1, 1, 12, 12), 0.5, dtype=torch.float64), lr, 2.0, downscale, iterations)
        assert sr.min() == 0 and sr.max() == 1


def test_back_project_is_the_authors_step_at_a_non_integer_scale():
    # sr <- clip(sr + bicubic_up(lr - bicubic_down(sr))), up with the scale's own sampling geometry (x2.5 on a 5-pixel
    # side is 13 pixels, not a 13 / 5 = 2.6 enlargement).
    lr = smooth_lr(5, 6, seed=8)
    downscale = make_downscale(2.5, None)
    sr = smooth_lr(13, 15, seed=9)
    expected = (sr + imresize(lr - downscale(sr, (5, 6)), 2.5, out_size=(13, 15))).clamp(0, 1)
    torch.testing.assert_close(back_project(sr.clone(), lr, 2.5, downscale, 1), expected, atol=1e-12, rtol=0)


def test_back_project_acts_on_the_last_two_dims():
    # Like imresize, any leading dims: (C, h, w) as well as (N, C, h, w).
    lr = smooth_lr(6, 7, seed=10)
    sr = smooth_lr(12, 14, seed=11)
    downscale = make_downscale(2.0, None)
    batched = back_project(sr.clone(), lr, 2.0, downscale, 2)
    torch.testing.assert_close(back_project(sr[0].clone(), lr[0], 2.0, downscale, 2), batched[0])
