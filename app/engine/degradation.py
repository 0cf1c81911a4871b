"""What the photo went through, measured on the photo itself, and LR sons made to go through the same.

The noise level is estimated from the image (Immerkaer's fast Laplacian estimator, taken over the flattest blocks so
that texture is not counted as noise); JPEG compression reuses the upload's own quantization tables
(app.engine.jpeg.JpegProfile), so the sons carry the blocks and ringing the photo carries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from app.engine.config import EngineConfig
from app.engine.jpeg import JpegProfile

# (N, C, h, w) in [0, 1] -> the same, degraded; applied to LR sons after the noise.
Compress = Callable[[torch.Tensor], torch.Tensor]

_LAPLACE_PAIR = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
NOISE_BLOCK = 16
# The estimate is this quantile of the per-block estimates: flat blocks show the noise, textured ones inflate it.
NOISE_QUANTILE = 0.1
# An estimate above this is texture rather than noise (8/255): no photo worth enlarging is that noisy.
MAX_ESTIMATED_NOISE = 0.03


def luma(x: torch.Tensor) -> torch.Tensor:
    """(N, 3 or 1, H, W) -> (N, 1, H, W): BT.601 luma in the input's range."""
    if x.shape[1] == 1:
        return x
    return 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def estimate_noise(image: torch.Tensor) -> float:
    """The std of additive white Gaussian noise in `image` ((1, C, H, W) in [0, 1]), on luma.

    Immerkaer (1996): the 3x3 operator below cancels locally planar signal, and for Gaussian noise
    E|response| = 6 * sigma * sqrt(2 / pi). Per 16 px block, then a low quantile over blocks.
    """
    y = luma(image.double().cpu())
    if min(y.shape[-2:]) < 3:
        return 0.0
    response = F.conv2d(y, _LAPLACE_PAIR.to(y)[None, None]).abs()[0, 0]
    h, w = response.shape
    block = min(NOISE_BLOCK, h, w)
    rows, cols = h // block, w // block
    blocks = response[:rows * block, :cols * block].reshape(rows, block, cols, block).mean(dim=(1, 3))
    per_block = blocks.flatten() * math.sqrt(math.pi / 2) / 6
    return float(torch.quantile(per_block, NOISE_QUANTILE)) if per_block.numel() > 1 else float(per_block[0])


def jpeg_compress(profile: JpegProfile) -> Compress:
    """Sons through the photo's JPEG encoding: quantised to 8 bits, compressed with its tables, decoded."""

    def compress(x: torch.Tensor) -> torch.Tensor:
        pixels = (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
        pixels = pixels.permute(0, 2, 3, 1).numpy()
        if pixels.shape[-1] == 1:
            pixels = pixels[..., 0]
        out = np.stack([profile.roundtrip(np.ascontiguousarray(p)) for p in pixels])
        if out.ndim == 3:
            out = out[..., None]
        return torch.from_numpy(out).permute(0, 3, 1, 2).to(device=x.device, dtype=x.dtype) / 255

    return compress


@dataclass(frozen=True)
class SonDegradation:
    """How this run makes its LR sons, beyond the downscaling: decided once per image, reported with the result."""

    noise_std: float
    noise_estimated: bool
    jpeg: JpegProfile | None

    @classmethod
    def plan(cls, config: EngineConfig, source: torch.Tensor, jpeg: JpegProfile | None) -> SonDegradation:
        """From the config and, where it asks, from the training image `source` ((1, C, H, W)) and its JPEG."""
        if config.estimate_noise:
            noise_std, estimated = min(estimate_noise(source), MAX_ESTIMATED_NOISE), True
        else:
            noise_std, estimated = config.noise_std, False
        return cls(noise_std, estimated, jpeg if config.sons_jpeg else None)

    @property
    def compress(self) -> Compress | None:
        return None if self.jpeg is None else jpeg_compress(self.jpeg)

    def describe(self) -> dict:
        """JSON-ready: what the sons went through (and what was measured on the photo to decide it)."""
        return {"noise_std": round(self.noise_std, 5), "noise_estimated": self.noise_estimated,
                "jpeg": None if self.jpeg is None else self.jpeg.describe()}


def gaussian_kernel(sigma_y: float, sigma_x: float, theta: float, factor: int, size: int = 0) -> np.ndarray:
    """A normalised (anisotropic) Gaussian blur, `theta` radians from the x axis, centred for sampling at
    i * factor: its centre sits (factor - 1) / 2 px right of and below the array's centre, so each LR pixel
    lands on the centre of its HR block (the engine's convention, as app.engine.resize._centred_kernel)."""
    size = size or 2 * int(math.ceil(3 * max(sigma_x, sigma_y))) + 2 * factor + 1
    centre = (size - 1) / 2 + (factor - 1) / 2
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) - centre
    c, s = math.cos(theta), math.sin(theta)
    u, v = c * x + s * y, -s * x + c * y
    kernel = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return kernel / kernel.sum()


def blur_downscale(hr: torch.Tensor, kernels: torch.Tensor, factor: int) -> torch.Tensor:
    """Each image of `hr` (N, C, H, W) correlated with its own kernel of `kernels` (N, k, k) (already centred,
    see gaussian_kernel), keeping every `factor`-th pixel from the first: (N, C, H // factor, W // factor)."""
    n, c, h, w = hr.shape
    pad = kernels.shape[-1] // 2
    weight = kernels.to(hr).repeat_interleave(c, dim=0)[:, None]
    padded = F.pad(hr.reshape(1, n * c, h, w), (pad, pad, pad, pad), mode="replicate")
    blurred = F.conv2d(padded, weight, groups=n * c).reshape(n, c, h, w)
    return blurred[..., ::factor, ::factor]
