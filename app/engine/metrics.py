"""Image-quality metrics of the SR literature: PSNR and SSIM on the BT.601 luma channel, borders shaved."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) or (H, W) uint8 -> BT.601 luma in [16, 235] as float64 (MATLAB's rgb2ycbcr)."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    return 16.0 + (65.481 * image[..., 0] + 128.553 * image[..., 1] + 24.966 * image[..., 2]) / 255.0


def _shave(y: np.ndarray, border: int) -> np.ndarray:
    return y[border:-border, border:-border] if border > 0 else y


def psnr_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    """PSNR in dB between two uint8 images on Y, with `border` pixels shaved on every side."""
    a, b = _shave(rgb_to_y(sr), border), _shave(rgb_to_y(hr), border)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def ssim_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    """SSIM (Wang et al. 2004: 11x11 Gaussian, sigma 1.5, K1 0.01, K2 0.03, valid region) on Y, shaved."""
    a = torch.from_numpy(_shave(rgb_to_y(sr), border))[None, None]
    b = torch.from_numpy(_shave(rgb_to_y(hr), border))[None, None]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = torch.exp(-((torch.arange(11, dtype=torch.float64) - 5) ** 2) / (2 * 1.5 ** 2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :])[None, None]

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())
