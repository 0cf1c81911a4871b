"""Behaviours of app/engine/degradation.py that mutation testing found unpinned: what the JPEG sons come out as, the
noise read from an image of two blocks, and the details of the kernels and the plan."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from app.engine.blur_net import MIN_SIDE, read_blur
from app.engine.config import EngineConfig
from app.engine.degradation import (COARSE_SIGMAS, KERNEL_SIGMAS, PATCH_SIDE, KernelEstimate, SonDegradation,
                                    _nearest_distance, _patches, blur_downscale, estimate_kernel, estimate_noise,
                                    gaussian_kernel, jpeg_compress, read_kernel, son_kernel)
from app.engine.jpeg import JpegProfile
from tests.conftest import pattern
from tests.test_degradation import dead_leaves, photo_of


def picture(batch: int = 2) -> torch.Tensor:
    images = [pattern(24, 32), pattern(24, 32)[::-1]]
    return torch.from_numpy(np.stack(images[:batch]).copy()).permute(0, 3, 1, 2).double() / 255


def test_jpeg_sons_stay_in_the_unit_range_and_near_what_went_in():
    batch = picture()
    out = jpeg_compress(JpegProfile.standard(75))(batch)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert float((out - batch).abs().mean()) < 0.15
    assert out.device == batch.device and out.dtype == batch.dtype


@pytest.mark.parametrize("low, high", [(-0.3, 1.0), (0.0, 1.4), (-0.2, 1.2)])
def test_a_son_pushed_past_black_or_white_by_noise_is_compressed_as_its_clipped_self(low, high):
    # Noise goes on before compression, so a son may leave [0, 1]; the encoder sees it clipped, never wrapped round.
    batch = picture()
    noisy = low + (high - low) * batch
    compress = jpeg_compress(JpegProfile.standard(90))
    torch.testing.assert_close(compress(noisy), compress(noisy.clamp(0, 1)), rtol=0, atol=0)


def test_an_image_of_two_blocks_reads_the_low_quantile_of_both_not_the_first():
    # 18 x 34 px: a 16 x 32 response, two 16 px blocks side by side; the left one noisy, the right one nearly flat.
    grain = torch.randn(1, 1, 18, 34, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    image = 0.5 + grain * torch.where(torch.arange(34) < 17, 0.04, 0.004).double()
    left = estimate_noise(image[..., :18])
    right = estimate_noise(image[..., 17:])
    both = estimate_noise(image)
    assert right < both < left  # between the two, near the flat block's
    assert both < right + 0.2 * (left - right)


def photo(height: int = 96, width: int = 128) -> torch.Tensor:
    return torch.from_numpy(pattern(height, width).transpose(2, 0, 1) / 255.0)[None]


def test_the_learned_reader_gives_a_gaussian_to_the_hundredth_and_no_distance():
    image = photo()
    estimate = read_kernel(image)
    reading = read_blur(image)
    assert estimate.sigma is not None and abs(estimate.sigma - reading) <= 0.005 + 1e-12
    assert abs(estimate.sigma * 100 - round(estimate.sigma * 100)) < 1e-9
    assert math.isnan(estimate.distance)  # no patch distances were measured


def test_the_learned_reader_leaves_a_photo_too_small_to_read_on_bicubic():
    small = photo(MIN_SIDE - 1, 64)
    assert read_blur(small) is None
    estimate = read_kernel(small)
    assert estimate.sigma is None and math.isnan(estimate.distance) and estimate.kernel() is None


@pytest.mark.parametrize("estimator, scale, learned", [("learned", 2.0, True), ("auto", 2.0, True),
                                                       ("recurrence", 2.0, False), ("auto", 3.0, False),
                                                       ("recurrence", 3.0, False)])
def test_the_kernel_estimator_the_config_names_reads_the_kernel(estimator, scale, learned):
    # The learned reader measures no patch distances (nan); the recurrence search reports the one it won with.
    config = EngineConfig(estimate_kernel=True, kernel_estimator=estimator, scale_factor=scale, scale_times=1)
    kernel = SonDegradation.plan(config, photo(), None).kernel
    assert kernel is not None
    assert math.isnan(kernel.distance) is learned


@pytest.fixture(scope="module")
def small_scene() -> torch.Tensor:
    return dead_leaves(512, seed=1, count=2000)


def test_the_recurrence_estimate_reads_a_known_blur_and_keeps_blurs_in_order(small_scene):
    """As test_degradation's estimate on a 128 px photo, here on 64 px ones (fast enough for mutation runs): a
    Gaussian of std s scene px made 8x smaller reads about sqrt(3) * s / 8 at x2 (here 1.15 for s = 5, true 1.08),
    and more blur always reads more."""
    estimates = {sigma: estimate_kernel(photo_of(small_scene, sigma), 2.0) for sigma in (3.0, 5.0, 8.0)}
    assert estimates[5.0].sigma == pytest.approx(math.sqrt(3) * 5.0 / 8, abs=0.15)
    assert estimates[3.0].sigma < estimates[5.0].sigma < estimates[8.0].sigma
    assert all(e.sigma in KERNEL_SIGMAS and math.isfinite(e.distance) and e.distance > 0 for e in estimates.values())
    estimate = estimates[5.0]
    assert estimate.describe() == {"kind": "gaussian", "sigma": estimate.sigma, "size": estimate.kernel().shape[0]}
    assert estimate.kernel().shape[0] == 2 * math.ceil(4 * estimate.sigma) + 1
    assert estimate.kernel().sum() == pytest.approx(1.0)



def test_the_blur_reading_decides_a_blurry_photo_at_the_threshold_itself():
    source = photo()
    reading = read_blur(source)
    at = SonDegradation.plan(EngineConfig(blurry_photo_std=reading), source, None)
    assert at.blur_std == pytest.approx(reading) and at.blurry
    assert at.describe()["blur_std"] == round(reading, 2) and at.describe()["blurry"] is True
    above = SonDegradation.plan(EngineConfig(blurry_photo_std=reading + 0.01), source, None)
    assert above.blur_std == pytest.approx(reading) and not above.blurry


def test_the_blur_is_read_only_for_bicubic_sons_and_when_asked():
    source = photo()
    assert SonDegradation.plan(EngineConfig(blurry_photo_std=None), source, None).blur_std is None
    given = SonDegradation.plan(EngineConfig(blurry_photo_std=0.1, kernel="k.npy"), source, None)
    estimated = SonDegradation.plan(EngineConfig(blurry_photo_std=0.1, estimate_kernel=True), source, None)
    for planned in (given, estimated):
        assert planned.blur_std is None and not planned.blurry
        assert planned.describe()["blur_std"] is None


def test_the_patches_compared_are_the_lumas():
    # Texture in green alone: luma sees it (0.587 of it), the red plane would not.
    image = torch.full((1, 3, 20, 20), 0.5, dtype=torch.float64)
    image[:, 1] = torch.rand(20, 20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    patches = _patches(image)
    assert patches.shape == (16 * 16, PATCH_SIDE ** 2)
    expected = _patches(0.587 * image[:, 1:2])
    torch.testing.assert_close(patches, expected, rtol=0, atol=1e-5)


def test_a_jpegs_kernel_is_searched_with_sons_compressed_as_the_photo_was():
    source = photo()
    config = EngineConfig(estimate_kernel=True, kernel_estimator="recurrence", sons_jpeg=True)
    compressed = SonDegradation.plan(config, source, JpegProfile.standard(20)).kernel
    clean = SonDegradation.plan(config, source, None).kernel
    assert compressed.distance != pytest.approx(clean.distance, rel=1e-6)
    # sons_jpeg off: the photo's tables are not used, for the kernel either.
    off = SonDegradation.plan(config.replace(sons_jpeg=False), source, JpegProfile.standard(20)).kernel
    assert off == clean


def test_the_nearest_distance_is_the_mean_squared_distance_to_the_closest_patch():
    generator = torch.Generator().manual_seed(3)
    patches = torch.rand(50, PATCH_SIDE ** 2, generator=generator)
    assert _nearest_distance(patches, patches) == pytest.approx(0.0, abs=1e-5)  # every patch finds itself
    queries = torch.rand(300, PATCH_SIDE ** 2, generator=generator)  # more than one chunk of 256
    expected = torch.cdist(queries, patches).min(dim=1).values.square().mean()
    assert _nearest_distance(queries, patches) == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("scale, side", [(2.0, 20), (3.0, 30)])
def test_a_photo_just_large_enough_for_its_sons_patches_is_searched(scale, side):
    # A son of a side of 2 * scale * PATCH_SIDE still holds patches; a pixel less and bicubic is taken unsearched.
    image = photo(side, 40)
    searched = estimate_kernel(image, scale)
    assert math.isfinite(searched.distance)
    unsearched = estimate_kernel(image[..., :side - 1, :], scale)
    assert unsearched.sigma is None and math.isnan(unsearched.distance)


def test_the_kernel_search_tries_the_coarse_grid_then_both_fine_steps_beside_its_best(small_scene, monkeypatch):
    import app.engine.degradation as degradation

    tried = []
    real = degradation.son_kernel

    def recording(sigma):
        tried.append(sigma)
        return real(sigma)

    monkeypatch.setattr(degradation, "son_kernel", recording)
    chosen = estimate_kernel(photo_of(small_scene, 5.0), 2.0)
    coarse = [None, *COARSE_SIGMAS]
    assert tried[:len(coarse)] == coarse
    below, above = tried[len(coarse):]
    best_coarse = round(below + 0.05, 2)
    assert best_coarse in COARSE_SIGMAS and above == round(best_coarse + 0.05, 2)
    assert chosen.sigma in (below, best_coarse, above)


def test_the_kernel_estimate_is_the_same_on_every_run_noise_and_all():
    image = photo(96, 128)  # more textured patches than queries: a draw picks which
    first = estimate_kernel(image, 2.0, noise_std=0.02)
    torch.manual_seed(123)  # whatever the global generator holds
    second = estimate_kernel(image, 2.0, noise_std=0.02)
    assert first == second


@pytest.mark.parametrize("sigma", [0.3, 0.5, 1.15, 2.0])
def test_a_son_kernel_reaches_out_four_sigma_and_sums_to_one(sigma):
    kernel = son_kernel(sigma)
    assert kernel.shape == (2 * math.ceil(4 * sigma) + 1,) * 2
    assert kernel.sum() == pytest.approx(1.0)
    assert KernelEstimate(sigma, 0.0).describe() == {"kind": "gaussian", "sigma": sigma, "size": kernel.shape[0]}
    assert son_kernel(None) is None


def test_blurring_keeps_a_flat_image_flat_to_its_borders_in_the_images_own_dtype():
    flat = torch.full((2, 3, 20, 18), 0.7, dtype=torch.float32)
    kernels = torch.from_numpy(np.stack([gaussian_kernel(1.5, 1.5, 0.0, 2, 13), gaussian_kernel(0.8, 2.0, 0.5, 2, 13)]))
    out = blur_downscale(flat, kernels, 2)
    assert out.shape == (2, 3, 10, 9) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.full_like(out, 0.7), rtol=0, atol=1e-5)
