"""The network's two designs: the paper's (layers on every pixel) and the folded one (layers on f x f blocks,
sub-pixel output)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from app.engine.config import EngineConfig
from app.engine.network import ZSSRNet


def folded(fold: int, depth: int = 3, width: int = 8, kernel: int = 3, seed: int = 0) -> ZSSRNet:
    torch.manual_seed(seed)
    net = ZSSRNet(EngineConfig(model_fold=fold, model_depth=depth, model_width=width,
                               model_kernel_size=kernel)).double().eval()
    with torch.no_grad():
        torch.nn.init.normal_(net.layers[-1].weight, 0.0, 0.5)  # a residual that shows
    return net


@pytest.mark.parametrize("fold", [1, 2, 3])
@pytest.mark.parametrize("shape", [(12, 12), (13, 17), (1, 5)])
def test_an_untrained_network_is_its_input_at_any_size(fold, shape):
    """The zero last layer makes the untrained network the bicubic enlargement, folded or not, whatever the
    size's remainder by the fold."""
    net = ZSSRNet(EngineConfig(model_fold=fold, model_depth=3, model_width=8)).double()
    x = torch.rand(2, 3, *shape, dtype=torch.float64)
    assert torch.equal(net(x), x)
    assert folded(fold)(x).shape == x.shape


@pytest.mark.parametrize("fold, depth, kernel", [(1, 3, 3), (2, 3, 3), (2, 2, 5), (3, 2, 3)])
def test_the_receptive_radius_is_exactly_how_far_a_pixel_reaches(fold, depth, kernel):
    """A change at one pixel moves outputs up to `receptive_radius` away and no further (on the far side of its
    block it reaches fold - 1 further), which is what tiling's halo relies on."""
    net = folded(fold, depth, kernel=kernel)
    size = 4 * net.receptive_radius + 3 * fold
    x = torch.rand(1, 3, size, size, dtype=torch.float64)
    centre = size // 2 // fold * fold  # the first pixel of a block
    bumped = x.clone()
    bumped[..., centre, centre] += 1.0
    moved = (net(bumped) - net(x)).abs().sum(dim=(0, 1)) > 0
    rows, cols = moved.nonzero(as_tuple=True)
    assert int((rows - centre).abs().max()) == int((cols - centre).abs().max()) == net.receptive_radius


@pytest.mark.parametrize("fold", [2, 3])
def test_a_side_short_of_whole_blocks_is_filled_by_repeating_its_edge(fold):
    """The last block of an odd side holds the edge pixel repeated, not zeros (which would darken the edge)."""
    net = folded(fold)
    x = torch.rand(1, 3, 4 * fold + 1, 3 * fold + fold - 1, dtype=torch.float64)
    h, w = x.shape[-2:]
    padded = F.pad(x, (0, -w % fold, 0, -h % fold), mode="replicate")
    torch.testing.assert_close(net(x), net(padded)[..., :h, :w], atol=1e-12, rtol=0)
    zeros = F.pad(x, (0, -w % fold, 0, -h % fold))
    assert (net(x) - net(zeros)[..., :h, :w]).abs().max() > 1e-3


@pytest.mark.parametrize("fold", [2, 3])
def test_the_layers_see_the_blocks_of_the_input_and_unfold_in_place(fold):
    """Folding is a pixel unshuffle of the input and the output a pixel shuffle: a network whose layers are one
    1x1 identity-like mapping gives back input + input."""
    net = ZSSRNet(EngineConfig(model_fold=fold, model_depth=2, model_width=3 * fold * fold,
                               model_kernel_size=1)).double()
    eye = torch.eye(3 * fold * fold, dtype=torch.float64)[:, :, None, None]
    with torch.no_grad():
        for conv in net.layers:
            conv.weight.copy_(eye)
            conv.bias.zero_()
    x = torch.rand(1, 3, 4 * fold, 5 * fold, dtype=torch.float64)
    torch.testing.assert_close(net(x), 2 * x, atol=1e-12, rtol=0)
    # A layer mixing the fold's sub-pixels: its output is their block mean, put back at every sub-pixel.
    with torch.no_grad():
        mix = torch.zeros_like(eye)
        for c in range(3):
            mix[c * fold * fold:(c + 1) * fold * fold, c * fold * fold:(c + 1) * fold * fold] = 1 / fold ** 2
        net.layers[-1].weight.copy_(mix)
    block_mean = F.interpolate(F.avg_pool2d(x, fold), scale_factor=fold, mode="nearest")
    torch.testing.assert_close(net(x), x + block_mean, atol=1e-12, rtol=0)


@pytest.mark.parametrize("fold, width", [(1, 16), (2, 16), (4, 16), (4, 3)])
def test_the_work_per_output_pixel_falls_with_the_fold_squared(fold, width):
    """flops_per_pixel counts the layers' multiply-adds per output pixel: the layers run once per block."""
    config = EngineConfig(model_fold=fold, model_depth=4, model_width=width)
    net = ZSSRNet(config)
    planes = 3 * fold * fold
    per_block = 2 * 9 * (planes * width + width * width * 2 + width * planes)
    assert net.flops_per_pixel == per_block / (fold * fold)
    assert sum(p.numel() for p in net.layers[0].parameters()) == planes * width * 9 + width


@pytest.mark.parametrize("fold", [1, 2])
def test_he_initialisation_with_a_zero_last_layer(fold):
    torch.manual_seed(0)
    net = ZSSRNet(EngineConfig(model_fold=fold, model_depth=4, model_width=64))
    for conv in net.layers[:-1]:
        fan_in = conv.in_channels * 9
        assert float(conv.weight.detach().mean()) == pytest.approx(0.0, abs=0.2 * (2 / fan_in) ** 0.5)
        assert float(conv.weight.detach().std()) == pytest.approx((2 / fan_in) ** 0.5, rel=0.05)
        assert not conv.bias.any()
    assert not net.layers[-1].weight.any() and not net.layers[-1].bias.any()


@pytest.mark.parametrize("fold", [1, 2])
def test_the_authors_initialisation_draws_every_layer_from_variance_over_fan_in(fold):
    torch.manual_seed(0)
    net = ZSSRNet(EngineConfig(model_fold=fold, model_depth=3, model_width=64, init_variance=0.1))
    for conv in net.layers:
        fan_in = conv.in_channels * 9
        assert float(conv.weight.detach().mean()) == pytest.approx(0.0, abs=0.2 * (0.1 / fan_in) ** 0.5)
        assert float(conv.weight.detach().std()) == pytest.approx((0.1 / fan_in) ** 0.5, rel=0.06)
        assert not conv.bias.any()
