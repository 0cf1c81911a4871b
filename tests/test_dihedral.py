"""The dihedral table: eight distinct transforms, each undone by its inverse, on square and non-square tensors."""

from __future__ import annotations

import pytest
import torch

from app.engine.dihedral import DIHEDRAL


def asymmetric(h: int, w: int) -> torch.Tensor:
    """A tensor with no symmetry: every element distinct."""
    return torch.arange(2 * 3 * h * w, dtype=torch.float32).reshape(2, 3, h, w) ** 1.5


def test_there_are_eight_pairs():
    assert len(DIHEDRAL) == 8


@pytest.mark.parametrize("h, w", [(5, 5), (4, 7)])
def test_the_eight_transforms_are_distinct(h, w):
    x = asymmetric(h, w)
    outputs = [forward(x) for forward, _ in DIHEDRAL]
    for i in range(8):
        for j in range(i + 1, 8):
            a, b = outputs[i], outputs[j]
            assert a.shape != b.shape or not torch.equal(a, b), (i, j)


@pytest.mark.parametrize("h, w", [(5, 5), (4, 7), (1, 6)])
def test_each_inverse_undoes_its_transform(h, w):
    x = asymmetric(h, w)
    for forward, inverse in DIHEDRAL:
        assert torch.equal(inverse(forward(x)), x)
        assert torch.equal(forward(inverse(x)), x)


def test_the_set_is_the_dihedral_group():
    """Each transform is a rotation or a transpose-like flip of the last two dims, leading dims untouched."""
    x = asymmetric(3, 4)
    expected = [torch.rot90(x, k, (-2, -1)) for k in range(4)] + [
        torch.rot90(torch.flip(x, (-1,)), k, (-2, -1)) for k in range(4)]
    got = [forward(x) for forward, _ in DIHEDRAL]
    for e in expected:
        assert sum(g.shape == e.shape and torch.equal(g, e) for g in got) == 1
    # Non-square: the odd-k rotations swap height and width.
    shapes = sorted(tuple(g.shape[-2:]) for g in got)
    assert shapes == [(3, 4)] * 4 + [(4, 3)] * 4
    assert all(g.shape[:2] == x.shape[:2] for g in got)


def test_first_transform_is_the_identity():
    x = asymmetric(3, 4)
    forward, inverse = DIHEDRAL[0]
    assert torch.equal(forward(x), x) and torch.equal(inverse(x), x)
