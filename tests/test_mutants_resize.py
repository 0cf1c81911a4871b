"""Resizing at the edges mutation testing found loose: per-axis scales and sizes, the identity shortcut, dtype on
the tap-by-tap path, padding of any rank, kernels that are not normalised, square or odd, and the kernel file's
checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import app.engine.resize as resize
from app.engine.resize import _centred_kernel, imresize, kernel_downscale, load_kernel, scale_pair, symmetric_pad
from app.errors import ConfigError


def ramp(*shape: int, dtype=torch.float64) -> torch.Tensor:
    return torch.rand(*shape, dtype=dtype, generator=torch.Generator().manual_seed(sum(shape)))


def test_scale_pair():
    assert scale_pair((2, 3)) == (2.0, 3.0) and scale_pair([1.5, 1]) == (1.5, 1.0) and scale_pair(2) == (2.0, 2.0)


def test_a_size_alone_sets_each_axis_scale():
    x = ramp(1, 2, 5, 7)
    torch.testing.assert_close(imresize(x, out_size=(10, 21)), imresize(x, (2, 3)), atol=1e-12, rtol=0)
    torch.testing.assert_close(imresize(x, out_size=(15, 14)), imresize(x, (3, 2)), atol=1e-12, rtol=0)


def test_only_scale_one_at_the_same_size_is_the_identity():
    x = ramp(1, 1, 6, 8)
    assert torch.equal(imresize(x, 1.0), x)
    # A scale with the input's own size keeps that scale's sampling: the top-left of the full enlargement.
    torch.testing.assert_close(imresize(x, 2.0, out_size=(6, 8)), imresize(x, 2.0)[..., :6, :8], atol=1e-12, rtol=0)
    assert not torch.allclose(imresize(x, 2.0, out_size=(6, 8)), x)
    assert imresize(x, 1.0, out_size=(9, 8)).shape == (1, 1, 9, 8)


def test_the_tap_by_tap_path_keeps_float32(monkeypatch):
    monkeypatch.setattr(resize, "_DENSE_LIMIT", 0)
    assert imresize(ramp(1, 1, 6, 8, dtype=torch.float32), 0.5).dtype == torch.float32


def test_imresize_without_a_scale_or_size_says_so():
    with pytest.raises(ValueError, match="^imresize needs scale or out_size$"):
        imresize(ramp(1, 1, 4, 4))


def test_symmetric_pad_works_on_any_rank():
    x = ramp(1, 2, 4, 5)
    torch.testing.assert_close(symmetric_pad(x[0], 2, 1, 3, 0), symmetric_pad(x, 2, 1, 3, 0)[0])


def test_direct_kernel_downscale_normalises_and_keeps_the_size():
    x = ramp(1, 2, 12, 13, dtype=torch.float32)
    delta = np.zeros((5, 5))
    delta[2, 2] = 4.0  # not normalised: it is scaled to sum 1
    torch.testing.assert_close(kernel_downscale(x, delta, 3, "direct"), x[..., ::3, ::3], atol=1e-6, rtol=0)
    box = np.ones((3, 3))
    out = kernel_downscale(x, box.tolist(), 3, "direct")
    assert out.dtype == torch.float32 and out.shape == (1, 2, 4, 5)
    torch.testing.assert_close(out[..., 1, 1], x[..., 2:5, 2:5].mean(dim=(-2, -1)), atol=1e-6, rtol=0)


def test_kernel_downscale_names_the_alignments():
    with pytest.raises(ValueError) as caught:
        kernel_downscale(ramp(1, 1, 6, 6), np.ones((3, 3)), 2, "middle")
    assert str(caught.value) == "alignment must be one of ('direct', 'centred'); got 'middle'"


def test_a_non_square_kernel_is_centred():
    kernel = np.outer(np.hanning(5)[1:4], np.hanning(7)[1:6])  # 3 x 5
    centred = _centred_kernel(kernel, 2)
    assert centred.shape[0] == centred.shape[1] and centred.sum() == pytest.approx(1.0)
    from scipy import ndimage

    assert ndimage.center_of_mass(centred) == pytest.approx(((centred.shape[0] - 1) / 2 + 0.5,) * 2)


def test_load_kernel_takes_any_positive_sum_as_float64(tmp_path):
    for name, kernel in (("unit.npy", np.full((2, 2), 0.25)), ("half.npy", np.full((2, 2), 0.125, np.float32))):
        np.save(tmp_path / name, kernel)
        loaded = load_kernel(str(tmp_path / name))
        assert loaded.dtype == np.float64 and loaded.sum() == pytest.approx(kernel.sum())


def test_load_kernel_names_the_formats_it_reads(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_kernel(str(tmp_path / "k.txt"))
    assert str(caught.value) == f"config key 'kernel': {tmp_path / 'k.txt'}: expected a .npy or .mat file"
