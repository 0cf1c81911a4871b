"""Training pairs: the pool of HR fathers, their random crops and dihedral augmentation, and LR sons."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from app.engine.dihedral import ALL, DIHEDRAL
from app.engine.resize import Scale, cubic, imresize, kernel_downscale, output_size, scale_pair

# The input is downscaled to these fractions of its size to make more HR fathers (the paper's "many smaller
# versions" of the test image); each is sampled with probability proportional to its area.
FATHER_SCALES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)

# `father_augment: warp`, the authors' augmentation (assafshocher/ZSSR, configs.py): a crop is left as it is 5 % of
# the time, rotated or flipped (no interpolation) 45 %, and otherwise warped by a random affine map: a scale drawn
# in [0.5, 1] (it replaces the fixed father scales above), the two axes' scales apart by a normal of std 0.25,
# a shear of std 0.1 on each axis, any angle; sampled bicubically from the father at its own size.
WARP_LEAVE, WARP_DIHEDRAL = 0.05, 0.45
WARP_MIN_SCALE, WARP_ASPECT_SIGMA, WARP_SHEAR_SIGMA = 0.5, 0.25, 0.1

# (hr, out_size or None) -> lr; `out_size` pins the LR size where rounding up twice would drift (x1.5 of 7 rows).
Downscale = Callable[..., torch.Tensor]
# (N, C, h, w) in [0, 1] -> the same, degraded as the photo was (app.engine.degradation.jpeg_compress); applied to
# LR sons after the noise.
Compress = Callable[[torch.Tensor], torch.Tensor]


def make_downscale(scale_factor: Scale, kernel: np.ndarray | None, alignment: str = "centred") -> Downscale:
    """HR -> LR: MATLAB bicubic by 1/scale_factor (per axis where two are given), or the given blur kernel
    (integer factors, the same on both axes) with `alignment` ("direct" or "centred", see kernel_downscale)."""
    if kernel is not None:
        factor = int(round(scale_factor))

        def by_kernel(hr: torch.Tensor, out_size: tuple[int, int] | None = None) -> torch.Tensor:
            lr = kernel_downscale(hr, kernel, factor, alignment)
            return lr if out_size is None else lr[..., :out_size[0], :out_size[1]]

        return by_kernel

    inverse = tuple(1 / s for s in scale_pair(scale_factor))

    def by_bicubic(hr: torch.Tensor, out_size: tuple[int, int] | None = None) -> torch.Tensor:
        return imresize(hr, inverse, out_size=out_size)

    return by_bicubic


def upscale(lr: torch.Tensor, scale_factor: Scale, size: tuple[int, int]) -> torch.Tensor:
    """LR -> the network's input: bicubic enlargement to exactly `size`."""
    return imresize(lr, scale_factor, out_size=size)


def lr_son(hr_father: torch.Tensor, scale_factor: Scale, downscale: Downscale, noise_std: float,
           generator: torch.Generator | None = None, compress: Compress | None = None) -> torch.Tensor:
    """The network input made from a father: downscale, add noise, compress (as the photo was), enlarge back.

    (N, C, H, W) in, same shape out.
    """
    lr = lr_son_small(hr_father, downscale, noise_std, generator, compress)
    return upscale(lr, scale_factor, tuple(hr_father.shape[-2:]))


def lr_son_small(hr_father: torch.Tensor, downscale: Downscale, noise_std: float,
                 generator: torch.Generator | None = None, compress: Compress | None = None) -> torch.Tensor:
    """The son at its own, smaller size: downscaled, noisy, clipped to [0, 1] as the stored input is (and as the
    authors clip), then compressed (the photo's own degradation)."""
    lr = downscale(hr_father)
    if noise_std > 0:
        noise = torch.randn(lr.shape, generator=generator, dtype=lr.dtype).to(lr.device)
        lr = lr + noise_std * noise
    lr = lr.clamp(0, 1)
    if compress is not None:
        lr = compress(lr)
    return lr


@dataclass
class FatherPool:
    """HR fathers (each (1, C, H, W) on the training device) and the probability of drawing each."""

    fathers: list[torch.Tensor]
    probabilities: np.ndarray

    warp: bool = False  # the authors' augmentation (see WARP_LEAVE); the pool then holds the sources alone

    @classmethod
    def build(cls, sources: list[torch.Tensor], scale_factor: Scale, min_side: int,
              warp: bool = False, by_source: bool = False) -> "FatherPool":
        """Each source and its downscaled copies whose sides stay at least `min_side` (with `warp`, the sources
        alone: each warp draws its own scale), drawn by area; with `by_source`, each source (the input, each
        earlier output) is drawn equally often, and its copies by area within it."""
        fathers, shares = [], []
        for source in sources:
            copies = []
            for s in (1.0,) if warp else FATHER_SCALES:
                h, w = output_size(tuple(source.shape[-2:]), s) if s != 1 else source.shape[-2:]
                if s != 1 and min(h, w) < min_side:
                    break
                copies.append(source if s == 1 else imresize(source, s).clamp_(0, 1))
            areas = np.array([f.shape[-2] * f.shape[-1] for f in copies], dtype=np.float64)
            fathers += copies
            shares.append(areas / areas.sum() if by_source else areas)
        weights = np.concatenate(shares)
        return cls(fathers, weights / weights.sum(), warp)

    def sample(self, rng: np.random.Generator, crop_size: int, batch_size: int, multiple: int,
               augment: Sequence[int] | bool = True) -> torch.Tensor:
        """A batch of random square crops, each under a random one of the rotations and flips `augment` allows
        (True: all 8; False: none; else their indices in DIHEDRAL): (batch_size, C, s, s) with s <= crop_size."""
        allowed = ALL if augment is True else (0,) if augment is False else tuple(augment)
        chosen = rng.choice(len(self.fathers), size=batch_size, p=self.probabilities)
        h = min([crop_size] + [self.fathers[i].shape[-2] for i in chosen])
        w = min([crop_size] + [self.fathers[i].shape[-1] for i in chosen])
        # A whole number of `multiple` pixels; a father smaller than that (a tiny photo at a large scale) is taken
        # whole rather than overrun.
        h, w = (n - n % multiple if n >= multiple else n for n in (h, w))
        # Square crops keep every dihedral transform's output the same shape, so a batch stacks.
        side = min(h, w)
        # Warps only where every rotation and flip is allowed: a warp turns a crop by any angle.
        warps: list[np.ndarray | None] = [None] * batch_size
        if self.warp and allowed == ALL:
            warps = [random_warp(rng) if rng.random() >= WARP_LEAVE + WARP_DIHEDRAL else None for _ in chosen]
            fits = [None if m is None else warp_fit(m, self.fathers[i].shape[-2:]) for m, i in zip(warps, chosen)]
            # A warp that shrinks needs more of its father than the crop: the batch's side is cut to what its
            # warps fit, but not below half; a warp that would cut it further is not made.
            side = max(min(multiple, side), min([side, *(f for f in fits if f is not None and f >= side // 2)])
                       // multiple * multiple)
            warps = [m if f is not None and f >= side else None for m, f in zip(warps, fits)]
        crops = []
        for i, matrix in zip(chosen, warps):
            father = self.fathers[i]
            if matrix is not None:
                crops.append(warped_crop(father, matrix, side, rng))
                continue
            if self.warp and rng.random() < WARP_LEAVE / (WARP_LEAVE + WARP_DIHEDRAL):
                index = 0  # left as it is
            else:
                index = allowed[rng.integers(len(allowed))] if len(allowed) > 1 else allowed[0]
            transform = DIHEDRAL[index][0]
            y = rng.integers(father.shape[-2] - side + 1)
            x = rng.integers(father.shape[-1] - side + 1)
            crops.append(transform(father[..., y:y + side, x:x + side]))
        return torch.cat(crops)


def random_warp(rng: np.random.Generator) -> np.ndarray:
    """A random affine map (2 x 2, acting on (y, x) offsets) from a crop's pixels to its father's: the inverse of
    a scale in [WARP_MIN_SCALE, 1] with the axes apart by N(0, WARP_ASPECT_SIGMA), a shear of N(0,
    WARP_SHEAR_SIGMA) on each axis and a rotation by any angle. Neither axis's scale exceeds 1 (the authors' may):
    an enlarged father is blurrier than any real image of the scene and would teach the network to blur."""
    scale = rng.uniform(WARP_MIN_SCALE, 1.0)
    apart = rng.normal(0.0, WARP_ASPECT_SIGMA)
    sy, sx = (min(1.0, max(WARP_MIN_SCALE / 2, scale * (1 + d))) for d in (apart / 2, -apart / 2))
    shear = np.array([[1.0, rng.normal(0.0, WARP_SHEAR_SIGMA)], [rng.normal(0.0, WARP_SHEAR_SIGMA), 1.0]])
    angle = rng.uniform(0.0, 2 * math.pi)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    forward = rotation @ shear @ np.diag([sy, sx])  # father offsets -> crop offsets
    return np.linalg.inv(forward)


def warp_fit(matrix: np.ndarray, size: tuple[int, int]) -> int:
    """The largest crop side whose warp by `matrix` keeps every sample inside a father of `size` (H, W) with a
    pixel to spare on each side (the cubic's neighbourhood)."""
    # A crop of side n spans offsets +-(n - 1) / 2 about its centre; its father footprint spans that times the
    # row sums of |matrix| along each axis.
    reach = np.abs(matrix).sum(axis=1)
    limits = [(length - 3) / r + 1 for length, r in zip(size, reach)]
    return max(0, int(math.floor(min(limits))))


def warped_crop(father: torch.Tensor, matrix: np.ndarray, side: int, rng: np.random.Generator) -> torch.Tensor:
    """A `side`-square crop of `father` ((N, C, H, W)) under the affine map `matrix` (crop offsets -> father
    offsets) about a random centre where the whole crop stays inside the father (see warp_fit); sampled with the
    MATLAB/Keys cubic (a = -0.5, which reproduces ramps exactly, unlike grid_sample's -0.75), clipped to [0, 1]."""
    h, w = father.shape[-2:]
    half = (side - 1) / 2
    reach = np.abs(matrix).sum(axis=1) * half
    cy = rng.uniform(1 + reach[0], max(1 + reach[0], h - 2 - reach[0]))
    cx = rng.uniform(1 + reach[1], max(1 + reach[1], w - 2 - reach[1]))
    oy, ox = np.meshgrid(np.arange(side) - half, np.arange(side) - half, indexing="ij")
    py = (cy + matrix[0, 0] * oy + matrix[0, 1] * ox).ravel()
    px = (cx + matrix[1, 0] * oy + matrix[1, 1] * ox).ravel()
    return cubic_sample(father, py, px).reshape(*father.shape[:2], side, side).clamp_(0, 1)


def cubic_sample(image: torch.Tensor, py: np.ndarray, px: np.ndarray) -> torch.Tensor:
    """`image` ((N, C, H, W)) at the points (py, px) (1-D, in pixels), with resize.cubic's 4 x 4 taps:
    (N, C, len(py)); indices beyond the border repeat the edge pixel."""
    h, w = image.shape[-2:]
    y0, x0 = np.floor(py), np.floor(px)
    flat = image.flatten(-2)
    out = torch.zeros(*image.shape[:2], len(py), dtype=image.dtype, device=image.device)
    for i in range(-1, 3):
        wy = cubic(py - (y0 + i))
        rows = np.clip(y0 + i, 0, h - 1).astype(np.int64) * w
        for j in range(-1, 3):
            weight = torch.from_numpy(wy * cubic(px - (x0 + j))).to(device=image.device, dtype=image.dtype)
            index = torch.from_numpy(rows + np.clip(x0 + j, 0, w - 1).astype(np.int64)).to(image.device)
            out += flat[..., index] * weight
    return out


def min_father_side(scale_factor: Scale) -> int:
    """The smallest father side worth learning from: its son must still hold a few pixels."""
    return max(8, int(math.ceil(4 * max(scale_pair(scale_factor)))))
