"""The noise read from a photo and its bounds: a highly textured photo is capped (texture is not noise), a clean one
reads zero, and the reading behaves as Immerkaer's estimator does (blind to planes, proportional to contrast,
the mean of the channels, nothing read from an image too small for the operator)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from app.engine import super_resolve
from app.engine.config import EngineConfig
from app.engine.degradation import MAX_ESTIMATED_NOISE, SonDegradation, estimate_noise

# The cap's own promise (degradation.py): an estimate above 8/255 is texture; no photo worth enlarging is that noisy.
CAP = 8 / 255


def woven(height: int = 96, width: int = 128) -> torch.Tensor:
    """A fabric-like texture, two crossed fine weaves in every block and no flat area: (1, 3, H, W) in [0, 1]."""
    y, x = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                          indexing="ij")
    weave = 0.5 + 0.25 * torch.sin(1.7 * x + 0.6 * y) + 0.2 * torch.sin(0.9 * x - 2.1 * y)
    return torch.stack([weave, 0.9 * weave, 1 - weave])[None]


def noise(shape: tuple[int, ...], sigma: float, seed: int = 0) -> torch.Tensor:
    return sigma * torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_a_highly_textured_photo_reads_no_more_noise_than_the_cap():
    fabric = woven()
    assert estimate_noise(fabric) > 1.5 * CAP  # what the estimator alone takes the weave for
    planned = SonDegradation.plan(EngineConfig(estimate_noise=True, noise_std=0.0), fabric, None)
    assert planned.noise_estimated
    assert planned.noise_std == pytest.approx(MAX_ESTIMATED_NOISE) and planned.noise_std <= CAP
    assert planned.describe()["noise_std"] <= CAP


def test_the_capped_reading_is_what_the_sons_of_a_textured_photo_get(tiny_config):
    pixels = (woven(24, 32)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert estimate_noise(torch.from_numpy(pixels / 255.0).permute(2, 0, 1)[None]) > CAP
    result = super_resolve(Image.fromarray(pixels), dataclasses.replace(tiny_config, estimate_noise=True))
    assert result.degradation["noise_estimated"] is True
    assert 0 < result.degradation["noise_std"] <= CAP


@pytest.mark.parametrize("sigma", [0.5 / 255, 4 / 255, 7 / 255])
def test_a_reading_under_the_cap_is_kept_as_read(sigma):
    # Flat grey with noise: the estimator reads it (about 10 % low, see estimate_noise) and the plan keeps it.
    photo = 0.5 + noise((1, 3, 64, 64), sigma)
    read = estimate_noise(photo)
    assert 0.8 * sigma < read < 1.05 * sigma
    assert SonDegradation.plan(EngineConfig(estimate_noise=True), photo, None).noise_std == pytest.approx(read)


def test_a_clean_photo_reads_no_noise_and_its_sons_get_none():
    y, x = torch.meshgrid(torch.arange(64, dtype=torch.float64), torch.arange(80, dtype=torch.float64),
                          indexing="ij")
    ramp = torch.stack([0.1 + 0.004 * x + 0.003 * y, 0.7 - 0.002 * x, 0.3 + 0.005 * y])[None]
    assert estimate_noise(ramp) == pytest.approx(0.0, abs=1e-12)  # the operator cancels planes
    assert SonDegradation.plan(EngineConfig(estimate_noise=True), ramp, None).noise_std == pytest.approx(0.0,
                                                                                                         abs=1e-12)


def test_the_config_noise_is_used_as_given_when_not_estimating():
    # No cap on a value the operator chose (the config's own range bounds it).
    planned = SonDegradation.plan(EngineConfig(estimate_noise=False, noise_std=0.08), woven(), None)
    assert (planned.noise_std, planned.noise_estimated) == (0.08, False)


def test_the_reading_is_the_mean_of_the_channels():
    flat = torch.full((1, 3, 48, 48), 0.5, dtype=torch.float64)
    grain = noise((1, 1, 48, 48), 6 / 255)
    one = flat.clone()
    one[:, :1] += grain
    assert estimate_noise(one) == pytest.approx(estimate_noise(0.5 + grain) / 3)
    gray = 0.5 + grain
    assert estimate_noise(gray) == pytest.approx(estimate_noise(gray.expand(1, 3, 48, 48)))


def test_an_image_too_small_for_the_operator_reads_zero_and_one_just_large_enough_reads_its_noise():
    assert estimate_noise(0.5 + noise((1, 3, 2, 40), 0.05)) == 0.0
    assert estimate_noise(0.5 + noise((1, 3, 40, 2), 0.05)) == 0.0
    assert estimate_noise(0.5 + noise((1, 3, 3, 40), 0.05)) > 0.01
    assert estimate_noise(0.5 + noise((1, 3, 40, 3), 0.05)) > 0.01


def test_blocks_smaller_than_sixteen_fit_a_small_image():
    # 10 px high: 8 rows of response, so 8 px blocks; its per-block estimates still find the noise.
    photo = 0.5 + noise((1, 1, 10, 200), 5 / 255)
    assert estimate_noise(photo) == pytest.approx(5 / 255, rel=0.3)


images = arrays(np.float64, st.tuples(st.integers(3, 40), st.integers(3, 40)),
                elements=st.floats(0, 1, allow_nan=False, width=32))


@given(images, st.floats(0.05, 4.0), st.floats(-1, 1), st.floats(-0.05, 0.05), st.floats(-0.05, 0.05))
def test_the_reading_ignores_planes_and_scales_with_contrast(image, gain, offset, dy, dx):
    x = torch.from_numpy(image)[None, None]
    h, w = image.shape
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    read = estimate_noise(x)
    assert read >= 0
    assert estimate_noise(x + offset + dy * yy + dx * xx) == pytest.approx(read, abs=1e-9)
    assert estimate_noise(gain * x) == pytest.approx(gain * read, rel=1e-9, abs=1e-12)


@given(images, st.floats(0.0, 1.0))
def test_the_planned_noise_is_never_above_the_cap_nor_below_zero(image, contrast):
    x = torch.from_numpy(contrast * image)[None, None]
    planned = SonDegradation.plan(EngineConfig(estimate_noise=True), x, None).noise_std
    assert 0 <= planned <= CAP
    read = estimate_noise(x)
    if read <= MAX_ESTIMATED_NOISE:
        assert planned == read
    else:
        assert planned == MAX_ESTIMATED_NOISE
    assert math.isfinite(planned)
