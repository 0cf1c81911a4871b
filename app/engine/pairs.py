"""Training pairs: the pool of HR fathers, their random crops and dihedral augmentation, and LR sons."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from app.engine.degradation import Compress
from app.engine.dihedral import ALL, DIHEDRAL
from app.engine.resize import imresize, kernel_downscale, output_size

# The input is downscaled to these fractions of its size to make more HR fathers (the paper's "many smaller
# versions" of the test image); each is sampled with probability proportional to its area.
FATHER_SCALES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)

# (hr, out_size or None) -> lr; `out_size` pins the LR size where rounding up twice would drift (x1.5 of 7 rows).
Downscale = Callable[..., torch.Tensor]


def make_downscale(scale_factor: float, kernel: np.ndarray | None, alignment: str = "centred") -> Downscale:
    """HR -> LR: MATLAB bicubic by 1/scale_factor, or the given blur kernel (integer factors) with `alignment`
    ("direct" or "centred", see kernel_downscale)."""
    if kernel is not None:
        factor = int(round(scale_factor))

        def by_kernel(hr: torch.Tensor, out_size: tuple[int, int] | None = None) -> torch.Tensor:
            lr = kernel_downscale(hr, kernel, factor, alignment)
            return lr if out_size is None else lr[..., :out_size[0], :out_size[1]]

        return by_kernel

    def by_bicubic(hr: torch.Tensor, out_size: tuple[int, int] | None = None) -> torch.Tensor:
        return imresize(hr, 1 / scale_factor, out_size=out_size)

    return by_bicubic


def upscale(lr: torch.Tensor, scale_factor: float, size: tuple[int, int]) -> torch.Tensor:
    """LR -> the network's input: bicubic enlargement to exactly `size`."""
    return imresize(lr, scale_factor, out_size=size)


def lr_son(hr_father: torch.Tensor, scale_factor: float, downscale: Downscale, noise_std: float,
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

    @classmethod
    def build(cls, sources: list[torch.Tensor], scale_factor: float, min_side: int) -> "FatherPool":
        """Each source and its downscaled copies whose sides stay at least `min_side`."""
        fathers = []
        for source in sources:
            for s in FATHER_SCALES:
                h, w = output_size(tuple(source.shape[-2:]), s) if s != 1 else source.shape[-2:]
                if s != 1 and min(h, w) < min_side:
                    break
                fathers.append(source if s == 1 else imresize(source, s).clamp_(0, 1))
        areas = np.array([f.shape[-2] * f.shape[-1] for f in fathers], dtype=np.float64)
        return cls(fathers, areas / areas.sum())

    def sample(self, rng: np.random.Generator, crop_size: int, batch_size: int, multiple: int,
               augment: Sequence[int] | bool = True) -> torch.Tensor:
        """A batch of random square crops, each under a random one of the rotations and flips `augment` allows
        (True: all 8; False: none; else their indices in DIHEDRAL): (batch_size, C, s, s) with s <= crop_size."""
        allowed = ALL if augment is True else (0,) if augment is False else tuple(augment)
        chosen = rng.choice(len(self.fathers), size=batch_size, p=self.probabilities)
        h = min([crop_size] + [self.fathers[i].shape[-2] for i in chosen])
        w = min([crop_size] + [self.fathers[i].shape[-1] for i in chosen])
        h, w = max(multiple, h - h % multiple), max(multiple, w - w % multiple)
        # Square crops keep every dihedral transform's output the same shape, so a batch stacks.
        side = min(h, w)
        crops = []
        for i in chosen:
            father = self.fathers[i]
            transform, _ = DIHEDRAL[allowed[rng.integers(len(allowed))]] if len(allowed) > 1 else DIHEDRAL[allowed[0]]
            y = rng.integers(father.shape[-2] - side + 1)
            x = rng.integers(father.shape[-1] - side + 1)
            crops.append(transform(father[..., y:y + side, x:x + side]))
        return torch.cat(crops)


def min_father_side(scale_factor: float) -> int:
    """The smallest father side worth learning from: its son must still hold a few pixels."""
    return max(8, int(math.ceil(4 * scale_factor)))
