"""The 8 dihedral transforms of a square (rotations and flips) and their inverses, in one table."""

from __future__ import annotations

from typing import Callable

import torch

Transform = Callable[[torch.Tensor], torch.Tensor]


def _rot(k: int) -> Transform:
    return lambda x: torch.rot90(x, k, dims=(-2, -1))


def _flip_rot(k: int) -> Transform:
    return lambda x: torch.rot90(torch.flip(x, dims=(-1,)), k, dims=(-2, -1))


def _unflip_rot(k: int) -> Transform:
    return lambda x: torch.flip(torch.rot90(x, -k, dims=(-2, -1)), dims=(-1,))


# (forward, inverse) for rotation by k * 90 degrees, then the same after a horizontal flip.
DIHEDRAL: tuple[tuple[Transform, Transform], ...] = (
    tuple((_rot(k), _rot(-k)) for k in range(4))
    + tuple((_flip_rot(k), _unflip_rot(k)) for k in range(4)))
