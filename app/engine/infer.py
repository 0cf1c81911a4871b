"""Enlarging with a trained network: overlapping tiles, geometric self-ensemble and back-projection."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from app.engine.dihedral import ALL, DIHEDRAL, keeps_axes, reversed_axes
from app.engine.pairs import Downscale, upscale
from app.engine.resize import Scale, output_size, scale_pair

Forward = Callable[[torch.Tensor], torch.Tensor]


def _aligned_halo(halo: int, align: int) -> int:
    """`halo` rounded up to a multiple of `align`."""
    return -(-halo // align) * align


def _spans(length: int, window: int, halo: int, align: int = 1) -> list[tuple[int, int, int, int]]:
    """Cut `length` into the fewest near-equal kept parts whose windows (part plus `halo` on inner sides) fit in
    `window`; each span is (window start, window end, kept start, kept end). With `align`, every cut and every
    window start is a multiple of it (the halo rounded up to one), as a network that folds blocks of `align`
    pixels needs to see the blocks of the whole image."""
    if length <= window:
        return [(0, length, 0, length)]
    halo = _aligned_halo(halo, align)
    blocks, most = -(-length // align), (window - 2 * halo) // align
    parts = -(-blocks // most)
    bounds = [min(length, align * (i * blocks // parts)) for i in range(parts + 1)]
    return [(max(0, a - halo), min(length, b + halo), a, b) for a, b in zip(bounds, bounds[1:])]


@torch.no_grad()
def tile_forward(net: Forward, x: torch.Tensor, patch_size: int, halo: int, align: int = 1) -> torch.Tensor:
    """`net(x)` computed on windows of at most `patch_size`; equals the whole-image result.

    The image is cut into near-equal kept parts; each window adds `halo` pixels (the network's receptive radius)
    on the sides that are not the image border, so every kept pixel sees the same neighbourhood as in the whole
    image, and no pixel is computed twice except in those margins. A network that folds `align` x `align` blocks
    gets windows that start on the whole image's block grid.
    """
    h, w = x.shape[-2:]
    if h <= patch_size and w <= patch_size:
        return net(x)
    if patch_size - 2 * _aligned_halo(halo, align) < align:
        raise ValueError(f"patch_size {patch_size} must exceed twice the receptive radius {halo}"
                         + (f" (rounded up to a multiple of {align}) by at least {align}" if align > 1 else ""))
    out = None
    for y0, y1, top, bottom in _spans(h, patch_size, halo, align):
        for x0, x1, left, right in _spans(w, patch_size, halo, align):
            y_out = net(x[..., y0:y1, x0:x1])
            if out is None:
                out = torch.empty(x.shape[0], y_out.shape[1], h, w, dtype=y_out.dtype, device=x.device)
            out[..., top:bottom, left:right] = y_out[..., top - y0:bottom - y0, left - x0:right - x0]
    return out


def self_ensemble(forward: Forward, x: torch.Tensor, enabled: bool = True, transforms: Sequence[int] = ALL,
                  grid_shift: int = 0) -> list[torch.Tensor]:
    """The outputs of `forward` over the dihedral transforms `transforms` of `x`, each mapped back (or just the
    identity's when not `enabled`).

    `grid_shift` (s - 1 for an LR image sampled directly at pixels 0, s, 2s, ...): along an axis that a transform
    counts backwards, the transformed image's samples sit at s - 1, 2s - 1, ... of its HR grid, while the network
    learned them at 0, s, ...; its output comes back that many pixels late along the axis, and is moved back
    (the last pixels repeated).
    """
    chosen = transforms if enabled else (0,)
    outputs = []
    for index in chosen:
        transform, inverse = DIHEDRAL[index]
        out = inverse(forward(transform(x)))
        if grid_shift:
            flip_y, flip_x = reversed_axes(index)
            out = _shift_back(out, grid_shift, -2) if flip_y else out
            out = _shift_back(out, grid_shift, -1) if flip_x else out
        outputs.append(out)
    return outputs


def _shift_back(x: torch.Tensor, d: int, dim: int) -> torch.Tensor:
    """x[..., i + d] at i along `dim`, the last pixel repeated at the end."""
    n = x.shape[dim]
    index = torch.clamp(torch.arange(n, device=x.device) + d, max=n - 1)
    return x.index_select(dim, index)


def back_project(sr: torch.Tensor, lr: torch.Tensor, scale_factor: Scale, downscale: Downscale,
                 iterations: int) -> torch.Tensor:
    """Make `sr` consistent with `lr`: add the enlarged difference between `lr` and `sr` downscaled."""
    for _ in range(iterations):
        residual = lr - downscale(sr, tuple(lr.shape[-2:]))
        sr = (sr + upscale(residual, scale_factor, tuple(sr.shape[-2:]))).clamp_(0, 1)
    return sr


@torch.no_grad()
def enlarge(net: Forward, lr: torch.Tensor, scale_factor: Scale, downscale: Downscale, *, patch_size: int,
            halo: int, ensemble: bool, align: int = 1, back_projection_iters: int, transforms: Sequence[int] = ALL,
            grid_shift: int = 0,
            memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """One gradual step: `lr` (1, C, h, w) in [0, 1] -> (1, C, ceil(h * sy), ceil(w * sx)), as the authors do
    it: each transform's output is back-projected, the median taken, and the median back-projected again.

    Where the two axes' scales differ, a transform that swaps the axes would enlarge each by the other's scale:
    only the four that keep them (the authors' k = 0, 2, 4, 6) enter the ensemble."""
    size = output_size(tuple(lr.shape[-2:]), scale_factor)
    sy, sx = scale_pair(scale_factor)
    if sy != sx:
        transforms = tuple(i for i in transforms if keeps_axes(i))

    def forward(image: torch.Tensor) -> torch.Tensor:
        interpolated = upscale(image, scale_factor, output_size(tuple(image.shape[-2:]), scale_factor))
        interpolated = interpolated.contiguous(memory_format=memory_format)
        sr = tile_forward(net, interpolated, patch_size, halo, align).clamp_(0, 1)
        return sr.contiguous()

    outputs = [back_project(sr, lr, scale_factor, downscale, back_projection_iters)
               for sr in self_ensemble(forward, lr, ensemble, transforms, grid_shift)]
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
