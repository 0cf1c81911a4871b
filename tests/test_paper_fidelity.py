"""Where the engine follows the authors and the field's protocols exactly: kernel alignment (direct as MZSR's and
the authors' imresize, centred as a camera), the mirrored border on tiny images, clipped noisy sons, the kernel-mode
augmentation switch, and the warm start's recorded scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

import app.engine.degradation as degradation_module
import app.engine.zssr as zssr
from app.engine import super_resolve
from app.engine.config import EngineConfig
from app.engine.degradation import KernelEstimate, son_kernel
from app.engine.dihedral import ALL, kernel_symmetries, reversed_axes
from app.engine.infer import self_ensemble
from app.engine.network import ZSSRNet
from app.engine.pairs import FatherPool, lr_son, lr_son_small, make_downscale, upscale
from app.engine.presets import PRESETS, preset_config
from app.engine.resize import kernel_downscale, symmetric_pad
from app.engine.warm_start import load_weights, save_weights
from app.errors import ConfigError


def mzsr_kernel(size: int = 15, variance: float = 2.0) -> np.ndarray:
    """MZSR's isotropic Gaussian (gkernel.py): covariance `variance` * I on a size x size grid centred between
    pixels for even sizes."""
    centre = size / 2.0 - 0.5
    t = np.arange(centre - size + 1, size - centre)
    y, x = np.meshgrid(t, t, indexing="ij")
    k = np.exp(-0.5 * (x ** 2 + y ** 2) / variance)
    return k / k.sum()


def mzsr_direct(hr: np.ndarray, kernel: np.ndarray, factor: int) -> np.ndarray:
    """The LR image as MZSR's imresize makes it with a numeric kernel ('direct'): scipy.ndimage.correlate with its
    default mirrored border on each channel, then rows and columns round(linspace(0, H - f, ceil(H / f)))."""
    out = np.stack([ndimage.correlate(hr[..., c], kernel) for c in range(hr.shape[-1])], axis=-1)
    rows = np.round(np.linspace(0, hr.shape[0] - factor, -(-hr.shape[0] // factor))).astype(int)
    cols = np.round(np.linspace(0, hr.shape[1] - factor, -(-hr.shape[1] // factor))).astype(int)
    return out[rows[:, None], cols]


def as_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.transpose(2, 0, 1).copy())[None]


@pytest.mark.parametrize("size, factor", [(15, 2), (13, 2), (14, 2), (15, 4), (9, 3)])
def test_direct_alignment_reproduces_mzsrs_lr_images(size, factor):
    rng = np.random.default_rng(size + factor)
    hr = rng.random((12 * factor, 10 * factor, 3))  # sides multiples of the factor, as the benchmark crops them
    kernel = mzsr_kernel(size)
    expected = mzsr_direct(hr, kernel, factor)
    got = kernel_downscale(as_tensor(hr), kernel, factor, "direct")[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_direct_alignment_keeps_pixels_0_f_2f_and_centred_puts_them_on_block_centres():
    hr = torch.rand(1, 1, 12, 18, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    delta = np.zeros((5, 5))
    delta[2, 2] = 1
    torch.testing.assert_close(kernel_downscale(hr, delta, 3, "direct"), hr[..., ::3, ::3], rtol=0, atol=1e-12)
    torch.testing.assert_close(kernel_downscale(hr, delta, 3, "centred"), hr[..., 1::3, 1::3], rtol=0, atol=1e-12)
    # A 2x2 box: centred is each 2x2 block's mean; direct (the box's middle element over the pixel) averages
    # pixels 2i - 1 and 2i.
    box = np.full((2, 2), 0.25)
    blocks = hr.reshape(1, 1, 6, 2, 9, 2).mean(dim=(3, 5))
    torch.testing.assert_close(kernel_downscale(hr, box, 2, "centred"), blocks, rtol=0, atol=1e-12)
    shifted = symmetric_pad(hr, 1, 0, 1, 0)[..., :12, :18].reshape(1, 1, 6, 2, 9, 2).mean(dim=(3, 5))
    torch.testing.assert_close(kernel_downscale(hr, box, 2, "direct"), shifted, rtol=0, atol=1e-12)


def test_symmetric_pad_mirrors_with_the_edge_repeated_even_past_the_image():
    x = torch.arange(3.0)[None, None, None]  # one row: 0 1 2
    padded = symmetric_pad(x, 0, 0, 4, 5)[0, 0, 0].tolist()
    assert padded == [2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0, 1]
    np.testing.assert_array_equal(symmetric_pad(x, 0, 0, 4, 5)[0, 0, 0].numpy(),
                                  np.pad(np.arange(3.0), (4, 5), mode="symmetric"))


@pytest.mark.parametrize("alignment", ["direct", "centred"])
@pytest.mark.parametrize("side", [2, 5, 8, 17])
def test_a_13x13_kernel_works_on_fathers_smaller_than_its_radius(alignment, side):
    kernel = mzsr_kernel(13, 1.5)
    hr = torch.rand(1, 3, side, side + 1, dtype=torch.float64, generator=torch.Generator().manual_seed(side))
    lr = kernel_downscale(hr, kernel, 2, alignment)
    assert lr.shape[-2:] == (-(-side // 2), -(-(side + 1) // 2))
    # A constant stays constant at any size: the mirrored border adds nothing.
    flat = torch.full((1, 1, side, side), 0.3, dtype=torch.float64)
    torch.testing.assert_close(kernel_downscale(flat, kernel, 2, alignment), torch.full_like(
        kernel_downscale(flat, kernel, 2, alignment), 0.3), rtol=0, atol=1e-12)


def test_the_pipeline_runs_a_13x13_kernel_on_a_tiny_photo(tiny_config, make_image, tmp_path):
    np.save(tmp_path / "k.npy", mzsr_kernel(13, 2.0))
    config = tiny_config.replace(kernel=str(tmp_path / "k.npy"), scale_times=2)
    assert super_resolve(make_image(9, 7), config).image.size == (36, 28)


def test_noisy_sons_are_clipped_to_the_unit_range():
    bright = torch.ones(1, 3, 32, 32, dtype=torch.float64)
    son = lr_son_small(bright, make_downscale(2.0, None), 0.2, torch.Generator().manual_seed(0))
    assert son.max() <= 1.0 and son.min() >= 0.0
    assert son.min() < 0.9  # the noise is there, only clipped


def test_the_noise_goes_on_the_small_son_not_on_the_father():
    # A constant father's son is exactly the constant plus noise_std times the generator's normals at the son's
    # size, enlarged: noise added to the father (and then shrunk) would be another image, about half as strong.
    father = torch.full((1, 1, 40, 40), 0.5, dtype=torch.float64)
    std = 0.01
    son = lr_son(father, 2.0, make_downscale(2.0, None), std, torch.Generator().manual_seed(5))
    normals = torch.randn((1, 1, 20, 20), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    expected = upscale((0.5 + std * normals).clamp(0, 1), 2.0, (40, 40))
    torch.testing.assert_close(son, expected, rtol=0, atol=1e-12)
    assert abs(float((son - 0.5).std()) / std - float((expected - 0.5).std()) / std) < 1e-9


def test_the_kernel_mode_augmentation_switch(tiny_config, rgb_image, tmp_path, monkeypatch):
    asymmetric = np.zeros((5, 5))
    asymmetric[2, 1:4] = (0.2, 0.5, 0.3)  # a horizontal smear, heavier to the right: only the vertical flip keeps it
    np.save(tmp_path / "iso.npy", mzsr_kernel(7, 1.0))
    np.save(tmp_path / "asym.npy", asymmetric)
    seen = {}
    real_sample, real_enlarge = FatherPool.sample, zssr.enlarge

    def sample(self, rng, crop_size, batch_size, multiple, augment=True):
        seen.setdefault("augment", set()).add(tuple(augment) if not isinstance(augment, bool) else augment)
        return real_sample(self, rng, crop_size, batch_size, multiple, augment)

    def enlarge(*args, **kwargs):
        seen.setdefault("ensemble", set()).add((tuple(kwargs["transforms"]), kwargs["grid_shift"]))
        return real_enlarge(*args, **kwargs)

    monkeypatch.setattr(FatherPool, "sample", sample)
    monkeypatch.setattr(zssr, "enlarge", enlarge)
    base = tiny_config.replace(self_ensemble=True, num_epochs=2)
    everything = tuple(range(8))
    vertical_flip = kernel_symmetries(asymmetric)
    assert vertical_flip != everything and 0 in vertical_flip and len(vertical_flip) == 2
    for changes, transforms, shift in [
            ({}, everything, 0),
            ({"kernel": str(tmp_path / "iso.npy")}, everything, 1),  # direct grid: flipped outputs moved back
            ({"kernel": str(tmp_path / "iso.npy"), "kernel_alignment": "centred"}, everything, 0),
            ({"kernel": str(tmp_path / "asym.npy")}, vertical_flip, 1),
            ({"kernel": str(tmp_path / "asym.npy"), "kernel_augment": True}, everything, 1)]:
        seen.clear()
        super_resolve(rgb_image, base.replace(**changes))
        assert seen == {"augment": {transforms}, "ensemble": {(transforms, shift)}}, changes


@pytest.mark.parametrize("alignment, shift", [("centred", 0), ("direct", 1)])
def test_an_estimated_kernel_lines_up_as_estimated_kernel_alignment_says(tiny_config, rgb_image, monkeypatch,
                                                                         alignment, shift):
    """The kernel-unknown benchmark samples LR pixels directly (MZSR's protocol); a camera centres them. The
    estimate (a Gaussian, here forced to sigma 1.0) must make sons and move ensemble outputs on that grid."""
    monkeypatch.setattr(degradation_module, "estimate_kernel",
                        lambda image, *args, **kwargs: KernelEstimate(1.0, 0.0))
    made, seen = [], set()
    real_make, real_enlarge = zssr.make_downscale, zssr.enlarge

    def make_downscale(factor, kernel=None, alignment="direct"):
        made.append((kernel, alignment))
        return real_make(factor, kernel, alignment)

    def enlarge(*args, **kwargs):
        seen.add((tuple(kwargs["transforms"]), kwargs["grid_shift"]))
        return real_enlarge(*args, **kwargs)

    monkeypatch.setattr(zssr, "make_downscale", make_downscale)
    monkeypatch.setattr(zssr, "enlarge", enlarge)
    config = tiny_config.replace(self_ensemble=True, num_epochs=2, estimate_kernel=True,
                                 kernel_estimator="recurrence", estimated_kernel_alignment=alignment)
    result = super_resolve(rgb_image, config)
    assert result.degradation["kernel"] == {"kind": "gaussian", "sigma": 1.0, "size": 9}
    [(kernel, used)] = made
    np.testing.assert_allclose(kernel, son_kernel(1.0))
    assert used == alignment
    assert seen == {(tuple(range(8)), shift)}


def test_a_flipped_direct_image_is_the_direct_image_of_the_flip_moved_by_s_minus_1():
    # Why the ensemble moves flipped outputs back by s - 1: flipping an image sampled at 0, s, 2s, ... gives the
    # samples of the flipped HR image at s - 1, 2s - 1, ...
    hr = torch.rand(1, 1, 12, 18, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    kernel = mzsr_kernel(7, 1.2)
    for s in (2, 3):
        flipped_lr = torch.flip(kernel_downscale(hr, kernel, s, "direct"), dims=(-1,))
        blurred = kernel_downscale(torch.flip(hr, dims=(-1,)), kernel, 1, "direct")
        torch.testing.assert_close(flipped_lr, blurred[..., ::s, s - 1::s], rtol=0, atol=1e-12)


def test_the_ensemble_moves_outputs_back_only_along_reversed_axes():
    x = torch.arange(4 * 6, dtype=torch.float64).reshape(1, 1, 4, 6)
    outputs = self_ensemble(lambda t: t, x, True, ALL, grid_shift=1)
    for index, out in enumerate(outputs):
        flip_y, flip_x = reversed_axes(index)
        expected = x
        if flip_y:
            expected = torch.cat([expected[..., 1:, :], expected[..., -1:, :]], dim=-2)
        if flip_x:
            expected = torch.cat([expected[..., 1:], expected[..., -1:]], dim=-1)
        torch.testing.assert_close(out, expected, rtol=0, atol=0)
    assert [reversed_axes(i) for i in ALL].count((False, False)) == 2  # the identity and the transpose


def test_unaugmented_crops_are_plain_crops_of_a_father():
    father = torch.arange(16 * 16, dtype=torch.float64).reshape(1, 1, 16, 16)
    pool = FatherPool([father], np.array([1.0]))
    rng = np.random.default_rng(0)
    for _ in range(20):
        crop = pool.sample(rng, 8, 1, 2, augment=False)[0, 0]
        y, x = divmod(int(crop[0, 0]), 16)
        torch.testing.assert_close(crop, father[0, 0, y:y + 8, x:x + 8])


def test_a_warm_start_trained_at_another_scale_is_refused(tiny_config, rgb_image, tmp_path):
    path = tmp_path / "w.pt"
    save_weights(ZSSRNet(tiny_config), tiny_config, path, recipe={"scale_factor": 2.0})
    load_weights(ZSSRNet(tiny_config), path, 2.0)
    with pytest.raises(ConfigError, match="x2 steps, but scale_factor is 3") as excinfo:
        load_weights(ZSSRNet(tiny_config), path, 3.0)
    assert excinfo.value.key == "warm_start"
    with pytest.raises(ConfigError) as excinfo:
        super_resolve(rgb_image, tiny_config.replace(warm_start=str(path), scale_factor=3.0))
    assert excinfo.value.key == "warm_start"
    # x4 by two x2 steps is what x2 weights are for.
    config = tiny_config.replace(warm_start=str(path), scale_times=2, num_epochs=1)
    assert super_resolve(rgb_image, config).image.size == (96, 72)


def test_the_authors_initialisation_draws_every_layer_at_their_variance():
    torch.manual_seed(0)
    authors = ZSSRNet(EngineConfig(model_width=64, model_depth=4, init_variance=0.1))
    for conv in authors.layers:
        fan_in = conv.in_channels * 9
        assert abs(float(conv.weight.detach().std()) / np.sqrt(0.1 / fan_in) - 1) < 0.1, conv
        assert float(conv.bias.detach().abs().max()) == 0.0
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert not torch.equal(authors(x), x)  # the last layer is drawn too: a random residual from the start
    ours = ZSSRNet(EngineConfig(model_width=64, model_depth=4))
    with torch.no_grad():
        assert torch.equal(ours(x), x)  # He with a zero last layer: bicubic until trained
    first = ours.layers[0]
    assert abs(float(first.weight.detach().std()) / np.sqrt(2.0 / (first.in_channels * 9)) - 1) < 0.15


AUTHORS_STEPS = ((1.0, 1.5), (1.5, 1.0), (1.5, 1.5), (1.5, 2.0), (2.0, 1.5), (2.0, 2.0))


def test_the_presets_pin_the_authors_choices_whatever_the_config_says():
    odd = EngineConfig(father_augment="warp", father_sampling="source", gradual_mode="grow", init_variance=0.1,
                       carry_optimizer=True, gradual_scales=[[1, 2], [2, 2]], learning_share=0.5)
    for name in PRESETS:
        config = preset_config(name, base=odd)
        assert (config.father_augment, config.father_sampling, config.init_variance,
                config.carry_optimizer, config.learning_share) == ("dihedral", "area", None, False, 1.0), name
        # Every preset but the authors' gradual x2 is one chain of steps; that one is its own six.
        gradual = (config.gradual_mode, config.gradual_scales)
        assert gradual == (("grow", AUTHORS_STEPS) if name == "paper-gradual" else ("chain", None)), name
    assert preset_config("paper", base=odd, father_augment="warp").father_augment == "warp"  # an override wins
