"""The 8 dihedral transforms of a square (rotations and flips) and their inverses, in one table."""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch

Transform = Callable[[torch.Tensor], torch.Tensor]


# Module-level functions bound with partial rather than closures made at import, so that the table's entries
# call these functions when applied (mutation testing swaps a function's body between tests, not a closure's).
def _rot(x: torch.Tensor, k: int) -> torch.Tensor:
    return torch.rot90(x, k, dims=(-2, -1))


def _flip_rot(x: torch.Tensor, k: int) -> torch.Tensor:
    return torch.rot90(torch.flip(x, dims=(-1,)), k, dims=(-2, -1))


def _unflip_rot(x: torch.Tensor, k: int) -> torch.Tensor:
    return torch.flip(torch.rot90(x, -k, dims=(-2, -1)), dims=(-1,))


# (forward, inverse) for rotation by k * 90 degrees, then the same after a horizontal flip.
DIHEDRAL: tuple[tuple[Transform, Transform], ...] = (
    tuple((partial(_rot, k=k), partial(_rot, k=-k)) for k in range(4))
    + tuple((partial(_flip_rot, k=k), partial(_unflip_rot, k=k)) for k in range(4)))

ALL = tuple(range(len(DIHEDRAL)))


def reversed_axes(index: int) -> tuple[bool, bool]:
    """Whether transform `index` counts the original rows (y) and columns (x) backwards: its first pixel comes
    from the original's last row or column. (A direct sampling grid, pixels 0, s, 2s, ..., lands on s - 1, 2s - 1,
    ... along such an axis; see app.engine.infer.self_ensemble.)"""
    y, x = torch.meshgrid(torch.arange(2.0), torch.arange(3.0), indexing="ij")
    forward = DIHEDRAL[index][0]
    return bool(forward(y)[0, 0] == 1), bool(forward(x)[0, 0] == 2)


def keeps_axes(index: int) -> bool:
    """Whether transform `index` keeps rows as rows (no quarter turn): the identity, the half turn and the two
    flips along an axis."""
    forward = DIHEDRAL[index][0]
    return tuple(forward(torch.zeros(2, 3)).shape) == (2, 3)


def kernel_symmetries(kernel, tolerance: float = 1e-6) -> tuple[int, ...]:
    """The transforms under which a 2-D blur kernel is unchanged (all 8 for an isotropic Gaussian, the identity
    alone for a generic one): only these keep a training pair, or a test image, made with that kernel."""
    k = torch.as_tensor(kernel, dtype=torch.float64)
    k = k / k.sum()
    scale = float(k.abs().max())
    return tuple(i for i, (forward, _) in enumerate(DIHEDRAL)
                 if forward(k).shape == k.shape and float((forward(k) - k).abs().max()) <= tolerance * scale)
