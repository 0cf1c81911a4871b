"""PSNR and SSIM on the BT.601 luma channel, with borders shaved, as the SR literature reports them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from app.engine.metrics import psnr_y, rgb_to_y, ssim_y


@pytest.fixture
def photo(make_image) -> np.ndarray:
    return np.asarray(make_image(40, 32))


@pytest.mark.parametrize("rgb, y", [
    ((0, 0, 0), 16.0), ((255, 255, 255), 235.0),
    ((255, 0, 0), 16.0 + 65.481), ((0, 255, 0), 16.0 + 128.553), ((0, 0, 255), 16.0 + 24.966),
    ((128, 128, 128), 16.0 + 219.0 * 128 / 255),
])
def test_y_of_pure_colours_is_bt601(rgb, y):
    image = np.broadcast_to(np.array(rgb, dtype=np.uint8), (2, 3, 3))
    np.testing.assert_allclose(rgb_to_y(image), np.full((2, 3), y), atol=1e-9)


def test_y_of_a_grayscale_image_is_the_image():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(rgb_to_y(gray), gray.astype(np.float64))
    np.testing.assert_array_equal(rgb_to_y(gray[:, :, None]), gray.astype(np.float64))


def test_psnr_of_identical_images_is_infinite(photo):
    assert psnr_y(photo, photo.copy(), 2) == math.inf


def test_known_mse_gives_known_psnr():
    hr = np.full((20, 20), 100, dtype=np.uint8)
    sr = hr + np.uint8(5)  # gray: Y is the value itself, so MSE = 25
    assert psnr_y(sr, hr, 0) == pytest.approx(10 * math.log10(255 ** 2 / 25))
    # In colour, +d on every channel moves Y by d * 219 / 255.
    hr_rgb = np.full((20, 20, 3), 100, dtype=np.uint8)
    d = 10
    expected_mse = (d * 219 / 255) ** 2
    assert psnr_y(hr_rgb + np.uint8(d), hr_rgb, 0) == pytest.approx(10 * math.log10(255 ** 2 / expected_mse))


def test_border_pixels_are_shaved():
    hr = np.full((20, 20), 100, dtype=np.uint8)
    sr = hr.copy()
    sr[:3, :] = 0  # damage only a 3-pixel band at the top
    assert psnr_y(sr, hr, 3) == math.inf
    assert psnr_y(sr, hr, 2) < 30
    sr[10, 10] = 110  # one damaged interior pixel among 14 x 14 kept
    assert psnr_y(sr, hr, 3) == pytest.approx(10 * math.log10(255 ** 2 / (100 / 196)))


def test_ssim_of_identical_images_is_one(photo):
    assert ssim_y(photo, photo.copy(), 2) == pytest.approx(1.0, abs=1e-12)


def test_ssim_drops_with_noise(photo):
    rng = np.random.default_rng(0)
    values = []
    for sigma in (2, 8, 30):
        noisy = np.clip(photo + rng.normal(0, sigma, photo.shape), 0, 255).astype(np.uint8)
        values.append(ssim_y(noisy, photo, 2))
    assert 1 > values[0] > values[1] > values[2] > 0


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al.'s SSIM with scipy filters: 11x11 Gaussian (sigma 1.5), K = (0.01, 0.03), L = 255, valid region."""
    t = np.arange(11) - 5
    g = np.exp(-t ** 2 / 4.5)
    window = np.outer(g, g) / np.outer(g, g).sum()

    def blur(x):
        return ndimage.correlate(x, window, mode="constant")[5:-5, 5:-5]

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = blur(a), blur(b)
    s_aa, s_bb, s_ab = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2, blur(a * b) - mu_a * mu_b
    ssim = ((2 * mu_a * mu_b + c1) * (2 * s_ab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (s_aa + s_bb + c2))
    return float(ssim.mean())


def test_ssim_matches_a_scipy_reference(photo):
    rng = np.random.default_rng(1)
    noisy = np.clip(photo + rng.normal(0, 12, photo.shape), 0, 255).astype(np.uint8)
    border = 3
    a = rgb_to_y(noisy)[border:-border, border:-border]
    b = rgb_to_y(photo)[border:-border, border:-border]
    assert ssim_y(noisy, photo, border) == pytest.approx(reference_ssim(a, b), abs=1e-9)


def test_ssim_is_symmetric(photo):
    other = np.clip(photo.astype(int) + 9, 0, 255).astype(np.uint8)
    assert ssim_y(photo, other, 1) == pytest.approx(ssim_y(other, photo, 1), abs=1e-12)
