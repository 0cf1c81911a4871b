"""The MATLAB-compatible bicubic resizer against hand-computed values, an independent package and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.io
import torch
from resize_right import interp_methods, resize_right

import app.engine.resize as resize
from app.engine.resize import imresize, kernel_downscale, load_kernel, output_size
from app.errors import ConfigError


def row(values) -> torch.Tensor:
    return torch.tensor([values], dtype=torch.float64)


def test_upscale_by_2_matches_matlab():
    # MATLAB: imresize([1 2 3 4], 2) = [0.9063 1.1797 1.7266 2.2500 2.7500 3.2734 3.8203 4.0938].
    # First sample by hand: u = 1/2 + 1/4 = 0.75; distances 1.75, 0.75, -0.25, -1.25 to input samples 0, 1, 2, 3
    # (1-based; sample 0 mirrors to 1 and -1 to 2) with Keys weights -0.0234375, 0.2265625, 0.8671875, -0.0703125:
    # -0.0234375 * 2 + 0.2265625 * 1 + 0.8671875 * 1 - 0.0703125 * 2 = 0.90625.
    out = imresize(row([1.0, 2.0, 3.0, 4.0]), 2)
    assert out.shape == (2, 8)
    expected = [0.90625, 1.1796875, 1.7265625, 2.25, 2.75, 3.2734375, 3.8203125, 4.09375]
    np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(out[1].numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(out[0].numpy().round(4),
                               [0.9062, 1.1797, 1.7266, 2.25, 2.75, 3.2734, 3.8203, 4.0938], atol=1e-4)


def test_downscale_by_half_is_antialiased_like_matlab():
    # MATLAB's imresize(1:8, 0.5) widens the kernel to 8 taps: weights scale * cubic(scale * d) for distances
    # d = 3.5 ... -3.5, normalised: [-0.01171875, -0.03515625, 0.11328125, 0.43359375] and mirrored.
    # First sample: u = 1.5, input samples -2..5 -> mirrored values 3 2 1 1 2 3 4 5 -> 1.44921875.
    # Second: u = 3.5, samples 0..7 -> values 1 1 2 3 4 5 6 7 -> 3.48828125; the rest by symmetry (9 - v).
    out = imresize(row([1, 2, 3, 4, 5, 6, 7, 8]), 0.5)
    np.testing.assert_allclose(out[0].numpy(), [1.44921875, 3.48828125, 5.51171875, 7.55078125], atol=1e-12)
    # Without antialiasing the plain 4-tap cubic gives (1-based u = 1.5): -0.0625 * 1 + 0.5625 * (1 + 2)
    # - 0.0625 * 3 = 1.4375: a different (aliased) answer, so the flag matters.
    plain = imresize(row([1, 2, 3, 4, 5, 6, 7, 8]), 0.5, antialias=False)
    np.testing.assert_allclose(plain[0].numpy(), [1.4375, 3.5, 5.5, 7.5625], atol=1e-12)


def keys_cubic(d: float) -> float:
    d = abs(d)
    if d <= 1:
        return 1.5 * d ** 3 - 2.5 * d ** 2 + 1
    if d <= 2:
        return -0.5 * d ** 3 + 2.5 * d ** 2 - 4 * d + 2
    return 0.0


def matlab_resize_1d(values: np.ndarray, scale: float, out_len: int) -> np.ndarray:
    """A sample-by-sample transcription of MATLAB's imresize contributions() for one axis."""
    n = len(values)
    shrink = scale < 1
    width = 4.0 / scale if shrink else 4.0
    out = np.empty(out_len)
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        total = acc = 0.0
        for j in range(left, left + math.ceil(width) + 2):
            w = scale * keys_cubic(scale * (u - j)) if shrink else keys_cubic(u - j)
            k = (j - 1) % (2 * n)          # symmetric padding: 1..n, n..1, repeated
            k = k if k < n else 2 * n - 1 - k
            acc += w * values[k]
            total += w
        out[x - 1] = acc / total
    return out


@pytest.mark.parametrize("scale", [2, 3, 4, 0.5, 0.25, 1 / 3, 1.5, 0.75, 2.5])
def test_matches_a_transcription_of_matlab(scale):
    rng = np.random.default_rng(7)
    values = rng.random(11)
    out_len = math.ceil(11 * scale - 1e-9)
    expected = matlab_resize_1d(values, scale, out_len)
    got = imresize(torch.from_numpy(values)[None], scale)[0].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize("scale", [2, 3, 0.5, 0.25])
@pytest.mark.parametrize("shape", [(12, 20), (24, 16)])
def test_matches_resize_right(scale, shape):
    rng = np.random.default_rng(int(scale * 100) + shape[0])
    x = rng.random(shape)
    reference = resize_right.resize(x, scale_factors=[scale, scale], interp_method=interp_methods.cubic,
                                    pad_mode="symmetric")
    got = imresize(torch.from_numpy(x), scale).numpy()
    assert got.shape == reference.shape
    np.testing.assert_allclose(got, reference, atol=1e-6)


@pytest.mark.parametrize("scale", [2, 3, 0.5, 1 / 3, 0.25])
def test_linear_ramp_is_reproduced_in_the_interior(scale):
    n = 48
    y, x = np.mgrid[1:n + 1, 1:n + 1].astype(np.float64)
    ramp = 0.3 * x - 0.2 * y + 5.0
    out = imresize(torch.from_numpy(ramp), scale).numpy()
    m = out.shape[0]
    u = np.arange(1, m + 1) / scale + 0.5 * (1 - 1 / scale)  # input coordinate of each output sample
    expected = 0.3 * u[None, :] - 0.2 * u[:, None] + 5.0
    # Away from the border (the kernel's reach: 2 / scale input samples when shrinking, 2 when enlarging).
    reach = 2 / scale if scale < 1 else 2
    inside = (u - reach >= 1) & (u + reach <= n)
    assert inside.sum() >= 4
    np.testing.assert_allclose(out[np.ix_(inside, inside)], expected[np.ix_(inside, inside)], atol=1e-9)


@pytest.mark.parametrize("scale", [2, 3, 0.5, 0.25, 1.7, 0.6])
def test_constant_image_is_preserved(scale):
    x = torch.full((2, 3, 13, 10), 0.37, dtype=torch.float64)
    out = imresize(x, scale)
    assert out.shape == (2, 3, math.ceil(13 * scale - 1e-9), math.ceil(10 * scale - 1e-9))
    torch.testing.assert_close(out, torch.full_like(out, 0.37), atol=1e-12, rtol=0)


@pytest.mark.parametrize("size, scale, expected", [
    ((7, 5), 2, (14, 10)), ((7, 5), 1.5, (11, 8)), ((7, 5), 0.5, (4, 3)), ((10, 9), 1 / 3, (4, 3)),
    ((30, 30), 1 / 3, (10, 10)), ((7, 5), 0.7, (5, 4)), ((10, 10), 0.1, (1, 1)), ((3, 4), 3, (9, 12)),
])
def test_output_size_is_the_ceiling(size, scale, expected):
    assert output_size(size, scale) == expected
    assert tuple(imresize(torch.rand(1, 1, *size, dtype=torch.float64), scale).shape[-2:]) == expected


def test_out_size_alone_and_with_scale():
    x = torch.rand(1, 3, 9, 12, dtype=torch.float64)
    assert imresize(x, out_size=(20, 7)).shape == (1, 3, 20, 7)
    # With a scale as well, the scale sets the geometry: the same as resizing by 2 when that is the size.
    torch.testing.assert_close(imresize(x, 2, out_size=(18, 24)), imresize(x, 2))
    with pytest.raises(ValueError):
        imresize(x)


def test_keeps_dtype_and_leading_dimensions():
    x = torch.rand(2, 3, 10, 14)
    out = imresize(x, 0.5)
    assert out.dtype == torch.float32 and out.shape == (2, 3, 5, 7)
    torch.testing.assert_close(out[1, 2], imresize(x[1, 2], 0.5))


@pytest.mark.parametrize("scale", [2, 0.5, 1.5, 0.3, 3])
def test_dense_and_tap_by_tap_paths_agree(monkeypatch, scale):
    x = torch.rand(2, 13, 17, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    dense = imresize(x, scale)
    monkeypatch.setattr(resize, "_DENSE_LIMIT", 0)
    taps = imresize(x, scale)
    torch.testing.assert_close(taps, dense, atol=1e-12, rtol=0)


def box_means(x: torch.Tensor, f: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return x[..., :h - h % f, :w - w % f].reshape(*x.shape[:-2], h // f, f, w // f, f).mean(dim=(-3, -1))


@pytest.mark.parametrize("kernel", [np.ones((1, 1)), np.pad(np.ones((1, 1)), 2)], ids=["1x1", "5x5-delta"])
def test_kernel_downscale_with_a_delta_kernel(kernel):
    x = torch.rand(1, 2, 12, 18, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    # Factor 3 (odd): the centred delta picks the middle pixel of each 3x3 block.
    torch.testing.assert_close(kernel_downscale(x, kernel, 3), x[..., 1::3, 1::3], atol=1e-12, rtol=0)
    # Factor 2 (even): the block centre falls between pixels, so the delta becomes the 2x2 block's mean.
    torch.testing.assert_close(kernel_downscale(x, kernel, 2), box_means(x, 2), atol=1e-12, rtol=0)


def gaussian(size: int, sigma: float) -> np.ndarray:
    t = np.arange(size) - (size - 1) / 2
    g = np.exp(-t ** 2 / (2 * sigma ** 2))
    return np.outer(g, g)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_kernel_downscale_with_a_gaussian(factor):
    kernel = gaussian(9, 1.2 * factor / 2)
    h, w = 10 * factor + 1, 12 * factor
    assert kernel_downscale(torch.rand(1, 3, h, w, dtype=torch.float64), kernel, factor).shape == (
        1, 3, math.ceil(h / factor), w // factor)
    # Constants stay constant; an unnormalised kernel is normalised.
    flat = torch.full((1, 1, h, w), 0.6, dtype=torch.float64)
    torch.testing.assert_close(kernel_downscale(flat, 7 * kernel, factor), torch.full_like(
        kernel_downscale(flat, kernel, factor), 0.6), atol=1e-12, rtol=0)
    # A linear ramp is sampled at each block's centre (i * factor + (factor - 1) / 2), away from the border.
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    ramp = torch.from_numpy(0.01 * x + 0.02 * y)[None, None]
    out = kernel_downscale(ramp, kernel, factor)[0, 0].numpy()
    centres_y = np.arange(out.shape[0]) * factor + (factor - 1) / 2
    centres_x = np.arange(out.shape[1]) * factor + (factor - 1) / 2
    expected = 0.01 * centres_x[None, :] + 0.02 * centres_y[:, None]
    radius = (9 + 2 * factor) // 2  # the centred kernel's reach, in HR pixels
    margin = math.ceil(radius / factor) + 1
    assert min(out.shape) - 2 * margin >= 2
    np.testing.assert_allclose(out[margin:-margin, margin:-margin], expected[margin:-margin, margin:-margin],
                               atol=1e-9)


def test_load_kernel_reads_npy_and_mat(tmp_path):
    kernel = gaussian(7, 1.5)
    np.save(tmp_path / "k.npy", kernel)
    scipy.io.savemat(tmp_path / "k.mat", {"label": np.array(["x"]), "kernel": kernel})
    np.testing.assert_allclose(load_kernel(str(tmp_path / "k.npy")), kernel)
    np.testing.assert_allclose(load_kernel(str(tmp_path / "k.mat")), kernel)


def bad_kernel_files(tmp_path):
    np.save(tmp_path / "three_d.npy", np.ones((3, 3, 3)))
    np.save(tmp_path / "zero.npy", np.zeros((3, 3)))
    np.save(tmp_path / "negative.npy", -np.ones((3, 3)))
    np.save(tmp_path / "nan.npy", np.full((3, 3), np.nan))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    scipy.io.savemat(tmp_path / "no_2d.mat", {"v": np.ones((2, 2, 2)), "s": "text"})
    (tmp_path / "k.txt").write_text("1 0\n0 1\n")
    (tmp_path / "garbage.npy").write_bytes(b"\x00\x01 not a numpy file" * 10)
    (tmp_path / "empty.mat").write_bytes(b"")
    (tmp_path / "header_only.mat").write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    return tmp_path


@pytest.mark.parametrize("name", ["missing.npy", "missing.mat", "three_d.npy", "zero.npy", "negative.npy",
                                  "nan.npy", "objects.npy", "no_2d.mat", "k.txt", "garbage.npy", "empty.mat",
                                  "header_only.mat"])
def test_load_kernel_errors_name_the_kernel_key(tmp_path, name):
    path = bad_kernel_files(tmp_path) / name
    with pytest.raises(ConfigError) as excinfo:
        load_kernel(str(path))
    assert excinfo.value.key == "kernel"
    assert name in str(excinfo.value)
