"""The dihedral table: eight distinct transforms, each undone by its inverse, on square and non-square tensors."""

from __future__ import annotations

import pytest
import torch

from app.engine.dihedral import ALL, DIHEDRAL, keeps_axes, kernel_symmetries, reversed_axes


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


def test_each_transform_is_its_rotation_or_flip():
    # Index k < 4 turns by k quarter turns; 4 + k flips left-right first (the authors' order, used by k-indexed
    # settings such as the ensemble's axis-keeping subset).
    x = asymmetric(3, 4)
    for k in range(4):
        assert torch.equal(DIHEDRAL[k][0](x), torch.rot90(x, k, (-2, -1)))
        assert torch.equal(DIHEDRAL[4 + k][0](x), torch.rot90(torch.flip(x, (-1,)), k, (-2, -1)))


def first_pixel_source(index: int, h: int = 4, w: int = 5) -> tuple[int, int]:
    """(row, column) of the original that transform `index` puts at its top-left pixel."""
    flat = DIHEDRAL[index][0](torch.arange(h * w).reshape(h, w))[0, 0].item()
    return divmod(flat, w)


@pytest.mark.parametrize("index", ALL)
def test_reversed_axes_says_where_the_first_pixel_comes_from(index):
    row, column = first_pixel_source(index)
    assert reversed_axes(index) == (row == 3, column == 4)


def test_reversed_axes_table():
    assert [reversed_axes(i) for i in ALL] == [
        (False, False), (False, True), (True, True), (True, False),
        (False, True), (False, False), (True, False), (True, True)]


def test_keeps_axes_are_the_transforms_without_a_quarter_turn():
    assert [i for i in ALL if keeps_axes(i)] == [0, 2, 4, 6]
    for i in ALL:
        assert keeps_axes(i) == (DIHEDRAL[i][0](asymmetric(3, 4)).shape[-2:] == (3, 4))


def gaussian(sigma_y: float, sigma_x: float, h: int = 7, w: int = 7) -> torch.Tensor:
    y = torch.arange(h, dtype=torch.float64) - (h - 1) / 2
    x = torch.arange(w, dtype=torch.float64) - (w - 1) / 2
    return torch.exp(-(y[:, None] / sigma_y) ** 2 / 2 - (x[None, :] / sigma_x) ** 2 / 2)


def test_kernel_symmetries():
    assert kernel_symmetries(gaussian(1.5, 1.5)) == ALL
    # Wider than tall: the flips and the half turn keep it, no quarter turn does.
    assert kernel_symmetries(gaussian(1.0, 2.0)) == (0, 2, 4, 6)
    assert kernel_symmetries(gaussian(1.0, 2.0, 5, 7)) == (0, 2, 4, 6)
    # Mirror-symmetric left to right only: the identity and the left-right flip.
    lopsided = gaussian(1.0, 1.0) * torch.linspace(1.0, 2.0, 7)[:, None]
    assert kernel_symmetries(lopsided) == (0, 4)
    assert kernel_symmetries(lopsided.T) == (0, 6)
    generic = torch.rand(5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert kernel_symmetries(generic) == (0,)
    # Lists and arrays are taken as well as tensors.
    assert kernel_symmetries(gaussian(1.5, 1.5).tolist()) == ALL


def test_kernel_symmetries_tolerance_is_relative_to_the_kernel_peak():
    # A symmetric kernel broken by a relative 1e-7 is still symmetric at the default 1e-6, not at 1e-8, whatever
    # the kernel's overall scale (it is normalised to sum 1 first).
    kernel = gaussian(1.5, 1.5)
    kernel[0, 1] += 1e-7 * kernel.max()
    for factor in (1.0, 1e-3, 250.0):
        assert kernel_symmetries(kernel * factor) == ALL
        assert kernel_symmetries(kernel * factor, tolerance=1e-8) == (0,)
    # At exactly the tolerance still symmetric; just past it, not.
    step = torch.zeros(3, 3, dtype=torch.float64)
    step[1, 1], step[0, 1] = 1.0, 0.5
    assert kernel_symmetries(step, tolerance=0.5) == ALL
    assert 2 not in kernel_symmetries(step, tolerance=0.49)


@pytest.mark.parametrize("shape", [(4, 7), (3, 4, 7), (1, 2, 4, 7)])
def test_transforms_act_on_the_last_two_dims_of_any_rank(shape):
    x = torch.arange(torch.Size(shape).numel(), dtype=torch.float32).reshape(shape)
    for index, (forward, inverse) in enumerate(DIHEDRAL):
        assert forward(x).shape[:-2] == x.shape[:-2]
        assert torch.equal(inverse(forward(x)), x), index
        assert torch.equal(forward(inverse(x)), x), index


def test_kernel_symmetries_are_judged_in_double_precision():
    # An asymmetry of 1e-8 is lost in float32 (whose step at 1 is 1.2e-7) but seen in float64.
    kernel = [[0.5, 1.0, 0.5], [1.0, 2.0, 1.0 + 1e-8], [0.5, 1.0, 0.5]]
    assert kernel_symmetries(kernel, tolerance=1e-10) == (0, 6)
    assert kernel_symmetries(kernel) == ALL
