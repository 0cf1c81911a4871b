"""Enlarging with a trained network: overlapping tiles, geometric self-ensemble and back-projection."""

from __future__ import annotations

from typing import Callable

import torch

from app.engine.dihedral import DIHEDRAL
from app.engine.pairs import Downscale, upscale
from app.engine.resize import output_size

Forward = Callable[[torch.Tensor], torch.Tensor]


def _starts(length: int, window: int, stride: int) -> list[int]:
    if length <= window:
        return [0]
    starts = list(range(0, length - window, stride))
    return starts + [length - window]


@torch.no_grad()
def tile_forward(net: Forward, x: torch.Tensor, patch_size: int, halo: int) -> torch.Tensor:
    """`net(x)` computed on overlapping `patch_size` windows; equals the whole-image result.

    Each window's outer `halo` pixels (the network's receptive radius) are dropped where they are not the image
    border, so every kept pixel saw the same neighbourhood as in the whole image. Kept pixels accumulate with their
    weights and are divided once.
    """
    h, w = x.shape[-2:]
    if h <= patch_size and w <= patch_size:
        return net(x)
    if patch_size <= 2 * halo + 1:
        raise ValueError(f"patch_size {patch_size} must exceed twice the receptive radius {halo}")
    stride = max(1, patch_size - 3 * halo)  # kept parts of neighbouring windows overlap by `halo` pixels
    out = weight = None
    for y in _starts(h, patch_size, stride):
        for x0 in _starts(w, patch_size, stride):
            window = x[..., y:y + patch_size, x0:x0 + patch_size]
            y_out = net(window)
            wh, ww = window.shape[-2:]
            top = 0 if y == 0 else halo
            left = 0 if x0 == 0 else halo
            bottom = wh if y + wh == h else wh - halo
            right = ww if x0 + ww == w else ww - halo
            if out is None:
                out = torch.zeros(x.shape[0], y_out.shape[1], h, w, dtype=y_out.dtype, device=x.device)
                weight = torch.zeros(1, 1, h, w, dtype=y_out.dtype, device=x.device)
            out[..., y + top:y + bottom, x0 + left:x0 + right] += y_out[..., top:bottom, left:right]
            weight[..., y + top:y + bottom, x0 + left:x0 + right] += 1
    return out / weight


def self_ensemble(forward: Forward, x: torch.Tensor, enabled: bool = True) -> list[torch.Tensor]:
    """The outputs of `forward` over the 8 dihedral transforms of `x`, each mapped back (or just one)."""
    transforms = DIHEDRAL if enabled else DIHEDRAL[:1]
    return [inverse(forward(transform(x))) for transform, inverse in transforms]


def back_project(sr: torch.Tensor, lr: torch.Tensor, scale_factor: float, downscale: Downscale,
                 iterations: int) -> torch.Tensor:
    """Make `sr` consistent with `lr`: add the enlarged difference between `lr` and `sr` downscaled."""
    for _ in range(iterations):
        residual = lr - downscale(sr, tuple(lr.shape[-2:]))
        sr = (sr + upscale(residual, scale_factor, tuple(sr.shape[-2:]))).clamp_(0, 1)
    return sr


@torch.no_grad()
def enlarge(net: Forward, lr: torch.Tensor, scale_factor: float, downscale: Downscale, *, patch_size: int,
            halo: int, ensemble: bool, back_projection_iters: int,
            memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """One gradual step: `lr` (1, C, h, w) in [0, 1] -> (1, C, ceil(h * s), ceil(w * s)), as the authors do it:
    each transform's output is back-projected, the median taken, and the median back-projected again."""
    size = output_size(tuple(lr.shape[-2:]), scale_factor)

    def forward(image: torch.Tensor) -> torch.Tensor:
        interpolated = upscale(image, scale_factor, output_size(tuple(image.shape[-2:]), scale_factor))
        interpolated = interpolated.contiguous(memory_format=memory_format)
        sr = tile_forward(net, interpolated, patch_size, halo).clamp_(0, 1)
        return sr.contiguous()

    outputs = [back_project(sr, lr, scale_factor, downscale, back_projection_iters)
               for sr in self_ensemble(forward, lr, ensemble)]
    if len(outputs) == 1:
        sr = outputs[0]
    else:
        # The true median (mean of the two middle values for an even count), as numpy's.
        ordered = torch.stack(outputs).sort(dim=0).values
        n = len(outputs)
        sr = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2
        sr = back_project(sr, lr, scale_factor, downscale, back_projection_iters)
    assert tuple(sr.shape[-2:]) == size
    return sr
