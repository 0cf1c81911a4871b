"""Property-based tests of the engine where the inputs are many and the rules exact: the resizer's sizes and its
MATLAB equivalence, the dihedral table, tiled inference, and where training crops may fall.

HYPOTHESIS_PROFILE picks how many examples (tests/conftest.py): few and fixed by default, many with `dev`.
"""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import torch
from hypothesis import given, strategies as st
from resize_right import interp_methods, resize_right
from torch import nn

from app.engine.dihedral import DIHEDRAL, keeps_axes, reversed_axes
from app.engine.infer import _spans, tile_forward
from app.engine.pairs import FatherPool
from app.engine.resize import imresize, output_size
from test_resize import matlab_resize_1d

sides = st.integers(1, 24)
# Scales as fractions p / q: the exact output size is then known in integers, and q-multiples of a size give
# whole-number outputs (where resize-right's geometry is MATLAB's).
fractions = st.tuples(st.integers(1, 5), st.integers(1, 5))
any_scale = st.floats(0.15, 4.5)
seeds = st.integers(0, 2**32 - 1)


def noise(seed: int, *shape: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random(shape))


@given(h=sides, w=sides, sy=fractions, sx=fractions, lead=st.lists(st.integers(1, 3), max_size=2))
def test_resize_gives_matlab_s_size_ceil_of_side_times_scale(h, w, sy, sx, lead):
    scale = (sy[0] / sy[1], sx[0] / sx[1])
    expected = (-(-h * sy[0] // sy[1]), -(-w * sx[0] // sx[1]))  # ceil in integers, no rounding to hide in
    assert output_size((h, w), scale) == expected
    x = torch.zeros(*lead, h, w, dtype=torch.float32)
    out = imresize(x, scale)
    assert tuple(out.shape) == (*lead, *expected) and out.dtype == torch.float32


@given(h=sides, w=sides, sy=any_scale, sx=any_scale, seed=seeds)
def test_resize_matches_a_transcription_of_matlab_at_any_size_and_scale(h, w, sy, sx, seed):
    x = noise(seed, h, w)
    out_h, out_w = output_size((h, w), (sy, sx))
    rows = np.stack([matlab_resize_1d(r, sx, out_w) for r in x.numpy()])
    expected = np.stack([matlab_resize_1d(c, sy, out_h) for c in rows.T]).T
    got = imresize(x, (sy, sx)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-10, rtol=0)


@given(qh=st.integers(1, 6), qw=st.integers(1, 6), sy=fractions, sx=fractions, seed=seeds)
def test_resize_matches_resize_right_where_the_output_is_whole(qh, qw, sy, sx, seed):
    h, w = qh * sy[1], qw * sx[1]
    scale = (sy[0] / sy[1], sx[0] / sx[1])
    x = noise(seed, h, w).numpy()
    reference = resize_right.resize(x, scale_factors=list(scale), interp_method=interp_methods.cubic,
                                    pad_mode="symmetric")
    got = imresize(torch.from_numpy(x), scale).numpy()
    assert got.shape == reference.shape
    np.testing.assert_allclose(got, reference, atol=1e-9, rtol=0)


@given(h=sides, w=sides, scale=any_scale, value=st.floats(0, 1))
def test_resize_keeps_a_constant_image_constant(h, w, scale, value):
    out = imresize(torch.full((h, w), value, dtype=torch.float64), scale)
    torch.testing.assert_close(out, torch.full_like(out, value), atol=1e-12, rtol=0)


def distinct(h: int, w: int, lead: tuple[int, ...] = (2,)) -> torch.Tensor:
    """Every element different, so any two different placements of them differ."""
    return torch.randperm(math.prod(lead) * h * w, generator=torch.Generator().manual_seed(h * 31 + w)).reshape(
        *lead, h, w).double()


transforms = st.integers(0, len(DIHEDRAL) - 1)
small = st.integers(1, 7)


@given(h=small, w=small, i=transforms)
def test_each_dihedral_inverse_undoes_its_transform_both_ways(h, w, i):
    x = distinct(h, w)
    forward, inverse = DIHEDRAL[i]
    assert torch.equal(inverse(forward(x)), x)
    assert torch.equal(forward(inverse(x)), x)
    assert torch.equal(forward(x).flatten().sort().values, x.flatten().sort().values)  # a permutation of pixels


@given(h=st.integers(2, 7), w=st.integers(2, 7), i=transforms, j=transforms)
def test_the_dihedral_table_is_closed_under_composition(h, w, i, j):
    # Any two transforms in turn are exactly one transform of the table, and so is each inverse. (With two or
    # more rows and columns of distinct pixels the eight transforms all differ.)
    x = distinct(h, w)

    def matches(y: torch.Tensor) -> list[int]:
        return [k for k, (forward, _) in enumerate(DIHEDRAL) if forward(x).shape == y.shape
                and torch.equal(forward(x), y)]

    assert len(matches(DIHEDRAL[i][0](DIHEDRAL[j][0](x)))) == 1
    assert len(matches(DIHEDRAL[i][1](x))) == 1


@given(h=st.integers(2, 7), longer=st.integers(1, 4), tall=st.booleans(), i=transforms)
def test_keeps_axes_and_reversed_axes_describe_each_transform(h, longer, tall, i):
    h, w = (h + longer, h) if tall else (h, h + longer)
    forward = DIHEDRAL[i][0]
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    assert keeps_axes(i) == (tuple(forward(y).shape) == (h, w))
    flip_y, flip_x = reversed_axes(i)
    # The transformed image's first pixel comes from the original's last row (column) exactly where the
    # transform counts rows (columns) backwards.
    assert int(forward(y)[0, 0]) == (h - 1 if flip_y else 0)
    assert int(forward(x)[0, 0]) == (w - 1 if flip_x else 0)


def conv_net(depth: int, kernel_size: int, seed: int) -> nn.Module:
    """A small random conv stack (zero padding, as ZSSRNet): its receptive radius is depth * (kernel_size // 2)."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    channels = [2] + [3] * (depth - 1) + [2]
    for c_in, c_out in zip(channels[:-1], channels[1:]):
        layers += [nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2), nn.ReLU()]
    return nn.Sequential(*layers[:-1]).double()


def nan_empty(*size, **kwargs) -> torch.Tensor:
    """torch.empty that fills with NaN: a pixel no tile wrote stays NaN."""
    return torch.full(size, float("nan"), **kwargs)


@given(h=st.integers(1, 40), w=st.integers(1, 40), depth=st.integers(1, 3), kernel_size=st.sampled_from([1, 3, 5]),
       extra_halo=st.integers(0, 2), spare=st.integers(2, 20), seed=seeds)
def test_tiled_inference_covers_every_pixel_and_equals_one_untiled_pass(h, w, depth, kernel_size, extra_halo,
                                                                      spare, seed):
    net = conv_net(depth, kernel_size, seed % 1000)
    halo = depth * (kernel_size // 2) + extra_halo
    patch_size = 2 * halo + spare
    x = noise(seed, 1, 2, h, w)
    with torch.no_grad():
        whole = net(x)
    with mock.patch.object(torch, "empty", nan_empty):
        tiled = tile_forward(net, x, patch_size, halo)
    assert not tiled.isnan().any()
    torch.testing.assert_close(tiled, whole, atol=1e-12, rtol=0)


@given(length=st.integers(1, 300), halo=st.integers(0, 10), spare=st.integers(1, 40))
def test_tiles_cut_each_axis_into_near_equal_parts_whose_windows_fit(length, halo, spare):
    window = 2 * halo + spare
    spans = _spans(length, window, halo)
    assert spans == _spans(length, window, halo, align=1)
    kept = [(a, b) for _, _, a, b in spans]
    # The kept parts cover 0..length once, in order, and differ in length by at most one.
    assert kept[0][0] == 0 and kept[-1][1] == length
    assert all(b == c for (_, b), (c, _) in zip(kept, kept[1:]))
    lengths = [b - a for a, b in kept]
    assert min(lengths) >= 1 and max(lengths) - min(lengths) <= 1
    # The fewest parts that fit: one part fewer would not.
    if length > window:
        assert len(spans) == -(-length // (window - 2 * halo))
    for start, end, a, b in spans:
        assert end - start <= window
        assert start == max(0, a - halo) and end == min(length, b + halo)


@given(length=st.integers(1, 300), halo=st.integers(0, 10), align=st.integers(2, 4), blocks=st.integers(1, 12))
def test_aligned_tiles_start_on_the_block_grid_and_keep_their_halo(length, halo, align, blocks):
    rounded = -(-halo // align) * align
    window = 2 * rounded + blocks * align
    spans = _spans(length, window, halo, align)
    kept = [(a, b) for _, _, a, b in spans]
    assert kept[0][0] == 0 and kept[-1][1] == length
    assert all(b == c for (_, b), (c, _) in zip(kept, kept[1:]))
    if length > window:
        # The fewest parts of whole blocks that fit.
        assert len(spans) == -(-(-(-length // align)) // blocks)
    for start, end, a, b in spans:
        assert a % align == 0 and start % align == 0 and b > a
        assert end - start <= window
        assert start == max(0, a - rounded) and end == min(length, b + rounded)
        assert b == length or b % align == 0


@given(sizes=st.lists(st.tuples(st.integers(1, 20), st.integers(1, 20)), min_size=1, max_size=3),
       crop_size=st.integers(1, 24), multiple=st.integers(1, 4), batch_size=st.integers(1, 3), seed=seeds)
def test_training_crops_lie_inside_their_father_and_reach_every_offset(sizes, crop_size, multiple, batch_size,
                                                                       seed):
    # Each father's pixels hold (father, row, column), so a crop says exactly where it was taken.
    fathers = [(10000 * k + 100 * torch.arange(h)[:, None] + torch.arange(w)[None, :]).double()[None, None]
               for k, (h, w) in enumerate(sizes)]
    rng = np.random.default_rng(seed)

    def where(crop: torch.Tensor) -> tuple[int, int, int]:
        k, rest = divmod(int(crop[0, 0, 0]), 10000)
        return (k, *divmod(rest, 100))

    pool = FatherPool(fathers, np.full(len(fathers), 1 / len(fathers)))
    for _ in range(20):
        batch = pool.sample(rng, crop_size, batch_size, multiple, augment=False)
        side = batch.shape[-1]
        assert batch.shape[0] == batch_size and batch.shape[-2] == side <= crop_size
        for crop in batch:
            k, y, x = where(crop)
            assert 0 <= y <= fathers[k].shape[-2] - side and 0 <= x <= fathers[k].shape[-1] - side
            assert torch.equal(crop, fathers[k][0, :, y:y + side, x:x + side])
    # From one father: the largest square that fits it and crop_size, a whole number of `multiple` pixels
    # (the father whole where it is smaller than that), at any offset, the last row and column included.
    h, w = sizes[0]
    single = FatherPool(fathers[:1], np.array([1.0]))
    side = min(n - n % multiple if n >= multiple else n for n in (min(crop_size, h), min(crop_size, w)))
    spans = (h - side + 1, w - side + 1)
    crops = [single.sample(rng, crop_size, 1, multiple, augment=False)[0] for _ in range(25 * max(spans))]
    assert all(crop.shape[-1] == side for crop in crops)
    places = [where(crop) for crop in crops]
    assert {y for _, y, _ in places} == set(range(spans[0]))
    assert {x for _, _, x in places} == set(range(spans[1]))
