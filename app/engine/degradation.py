"""What the photo went through, measured on the photo itself, and LR sons made to go through the same.

The noise level is estimated from the image (Immerkaer's fast Laplacian estimator, taken over the flattest blocks so
that texture is not counted as noise); JPEG compression reuses the upload's own quantization tables
(app.engine.jpeg.JpegProfile), so the sons carry the blocks and ringing the photo carries; the blur kernel can be
estimated too (cross-scale patch recurrence, off by default for photos: see the README's "Real photos"). The
Gaussian kernels and the per-image blur-and-sample here also serve the photo pre-training and the photo benchmark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from app.engine.config import EngineConfig
from app.engine.image_io import centre_crop, luma
from app.engine.jpeg import JpegProfile
from app.engine.pairs import Compress, lr_son_small, make_downscale

_LAPLACE_PAIR = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
NOISE_BLOCK = 16
# The estimate is this quantile of the per-block estimates: flat blocks show the noise, textured ones inflate it.
NOISE_QUANTILE = 0.1
# An estimate above this is texture rather than noise (8/255): no photo worth enlarging is that noisy.
MAX_ESTIMATED_NOISE = 0.03


def estimate_noise(image: torch.Tensor) -> float:
    """The std of additive white Gaussian noise in each channel of `image` ((1, C, H, W) in [0, 1]), as the LR
    sons get it: the mean of the channels' estimates.

    Immerkaer (1996): the 3x3 operator below cancels locally planar signal, and for Gaussian noise
    E|response| = 6 * sigma * sqrt(2 / pi). Per 16 px block, then a low quantile over blocks (on pure noise it
    reads about 10% low: the quantile of the blocks' scattered estimates).
    """
    x = image.double().cpu()
    if min(x.shape[-2:]) < 3:
        return 0.0
    return sum(_channel_noise(x[:, c:c + 1]) for c in range(x.shape[1])) / x.shape[1]


def _channel_noise(plane: torch.Tensor) -> float:
    response = F.conv2d(plane, _LAPLACE_PAIR.to(plane)[None, None]).abs()[0, 0]
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
    # Strided: only the kept samples are computed.
    out = F.conv2d(padded, weight, stride=factor, groups=n * c)
    return out.reshape(n, c, *out.shape[-2:])


# The kernel estimate looks at a centre crop of at most this side (enough patches to compare, and fast).
KERNEL_ESTIMATE_SIDE = 256
# The son kernels an estimate chooses from: MATLAB bicubic (None) or isotropic Gaussians of these stds (input px),
# searched on the coarse grid first and then at the fine steps beside the best coarse one.
KERNEL_SIGMAS = tuple(round(0.3 + 0.05 * i, 2) for i in range(35))  # 0.3 .. 2.0
COARSE_SIGMAS = KERNEL_SIGMAS[::2]  # 0.3, 0.4, .. 2.0
# Cross-scale recurrence: square patches of this side, the most textured share of the image's patches, and
# how many of those (drawn once, from a fixed seed) look for their nearest patch in each candidate son.
PATCH_SIDE = 5
TEXTURED_SHARE = 0.25
QUERIES = 1000


def _patches(image: torch.Tensor) -> torch.Tensor:
    """Every PATCH_SIDE-square patch of the luma of `image` ((1, C, H, W)), its mean removed: (n, side^2)."""
    x = image.float().cpu()
    patches = F.unfold(luma(x) if x.shape[1] == 3 else x[:, :1], PATCH_SIDE)[0].T
    return patches - patches.mean(dim=1, keepdim=True)


def _nearest_distance(queries: torch.Tensor, patches: torch.Tensor, chunk: int = 256) -> float:
    """The mean over `queries` of the squared distance to the nearest of `patches`."""
    total = 0.0
    for start in range(0, len(queries), chunk):
        total += float(torch.cdist(queries[start:start + chunk], patches).min(dim=1).values.square().sum())
    return total / len(queries)


@dataclass(frozen=True)
class KernelEstimate:
    """A son kernel estimated from the image itself: None for MATLAB bicubic."""

    sigma: float | None
    distance: float  # recurrence: mean squared distance of textured patches to their nearest in that son (else nan)

    def kernel(self) -> np.ndarray | None:
        return son_kernel(self.sigma)

    def describe(self) -> dict:
        if self.sigma is None:
            return {"kind": "bicubic"}
        return {"kind": "gaussian", "sigma": self.sigma, "size": son_kernel(self.sigma).shape[0]}


def son_kernel(sigma: float | None) -> np.ndarray | None:
    """A candidate son kernel: None for MATLAB bicubic, else an isotropic Gaussian out to 4 sigma (the engine's
    kernel downscaling centres it on each block)."""
    if sigma is None:
        return None
    return gaussian_kernel(sigma, sigma, 0.0, 1, 2 * int(math.ceil(4 * sigma)) + 1)


def estimate_kernel(image: torch.Tensor, scale_factor: float, noise_std: float = 0.0,
                    compress: Compress | None = None) -> KernelEstimate:
    """Choose, among MATLAB bicubic and the Gaussians of KERNEL_SIGMAS, the son kernel under which the small
    patches of `image` ((1, C, H, W) in [0, 1]) recur best in its son (made as training makes sons: the noise,
    then `compress`).

    Small patches of a natural image recur across its scales, and they do so most when the smaller scale is made
    with the kernel that made the image itself (Michaeli and Irani, "Nonparametric Blind Super-Resolution", ICCV
    2013; KernelGAN, Bell-Kligler et al. 2019, learns the same match adversarially). So each candidate's son is
    searched for the nearest patch of each of the image's most textured patches (mean removed), and the kernel
    with the smallest mean distance wins: a son too sharp holds no patch as soft as the image's edges, one too
    blurred none as sharp. Restricted to isotropic Gaussians; on Set5/Set14 made small with a Gaussian of std 1.41
    it reads 1.1 to 1.6 (see docs/measurements.md, "kernel unknown").
    """
    if min(image.shape[-2:]) < 2 * scale_factor * PATCH_SIDE:
        return KernelEstimate(None, float("nan"))  # too small for its son to hold a patch: bicubic
    patches = _patches(image)
    order = torch.argsort(patches.square().mean(dim=1), descending=True)
    textured = order[:max(1, int(len(patches) * TEXTURED_SHARE))]
    pick = torch.randperm(len(textured), generator=torch.Generator().manual_seed(0))[:QUERIES]
    queries = patches[textured[pick]]
    generator = torch.Generator()

    def tried(sigma: float | None) -> KernelEstimate:
        son = lr_son_small(image, make_downscale(scale_factor, son_kernel(sigma)), noise_std,
                           generator.manual_seed(0), compress)
        return KernelEstimate(sigma, _nearest_distance(queries, _patches(son)))

    best = min((tried(sigma) for sigma in (None, *COARSE_SIGMAS)), key=lambda e: e.distance)
    if best.sigma is not None:
        fine = KERNEL_SIGMAS.index(best.sigma)
        beside = [KERNEL_SIGMAS[i] for i in (fine - 1, fine + 1) if 0 <= i < len(KERNEL_SIGMAS)]
        best = min([best, *(tried(sigma) for sigma in beside)], key=lambda e: e.distance)
    return best


def read_kernel(image: torch.Tensor) -> KernelEstimate:
    """The son kernel as the learned blur reader (app.engine.blur_net) reads it from `image` ((1, C, H, W), made
    small by x2): a Gaussian of the std it reads, rounded to 0.01; bicubic where the image is too small to read."""
    from app.engine.blur_net import read_blur

    sigma = read_blur(image)
    return KernelEstimate(None if sigma is None else round(sigma, 2), float("nan"))


@dataclass(frozen=True)
class SonDegradation:
    """How this run makes its LR sons, beyond the downscaling: decided once per image, reported with the result."""

    noise_std: float
    noise_estimated: bool
    jpeg: JpegProfile | None
    kernel: KernelEstimate | None = None  # None: the config's kernel (a given file, or MATLAB bicubic)
    # the learned reader's blur std of the photo (blurry_photo_std set, bicubic sons), and whether it reaches it
    blur_std: float | None = None
    blurry: bool = False

    @classmethod
    def plan(cls, config: EngineConfig, source: torch.Tensor, jpeg: JpegProfile | None) -> SonDegradation:
        """From the config and, where it asks, from the training image `source` ((1, C, H, W)) and its JPEG."""
        if config.estimate_noise:
            noise_std, estimated = min(estimate_noise(source), MAX_ESTIMATED_NOISE), True
        else:
            noise_std, estimated = config.noise_std, False
        jpeg = jpeg if config.sons_jpeg else None
        kernel = None
        if config.estimate_kernel and config.kernel is None and float(config.scale_factor).is_integer():
            if config.kernel_estimator == "learned" or (config.kernel_estimator == "auto"
                                                         and config.scale_factor == 2):
                kernel = read_kernel(source)
            else:
                kernel = estimate_kernel(centre_crop(source, KERNEL_ESTIMATE_SIDE), config.scale_factor, noise_std,
                                         None if jpeg is None else jpeg_compress(jpeg))
        blur_std = None
        if config.blurry_photo_std is not None and config.kernel is None and kernel is None:
            # Only bicubic sons can be sharper than the photo: a kernel given or estimated is its own blur.
            from app.engine.blur_net import read_blur

            blur_std = read_blur(source)
        blurry = blur_std is not None and blur_std >= config.blurry_photo_std
        return cls(noise_std, estimated, jpeg, kernel, blur_std, blurry)

    @property
    def compress(self) -> Compress | None:
        return None if self.jpeg is None else jpeg_compress(self.jpeg)

    def describe(self) -> dict:
        """JSON-ready: what the sons went through (and what was measured on the photo to decide it)."""
        return {"noise_std": round(self.noise_std, 5), "noise_estimated": self.noise_estimated,
                "jpeg": None if self.jpeg is None else self.jpeg.describe(),
                "kernel": None if self.kernel is None else self.kernel.describe(),
                "blur_std": None if self.blur_std is None else round(self.blur_std, 2), "blurry": self.blurry}
