"""MATLAB-compatible bicubic resizing (imresize with antialiasing) and downscaling by an explicit blur kernel.

The weights follow MATLAB's `imresize`: the Keys cubic with a = -0.5, widened by 1/scale when shrinking
(antialiasing), symmetric boundary handling, and the pixel-centre mapping u = x / scale + 0.5 * (1 - 1 / scale).
A bicubic that skips the antialiasing or uses another boundary rule costs about 2 dB on Set5 (a known ZSSR-port
pitfall), so the tests pin this module against hand-computed and independently published values.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

# Above this many weight-matrix entries per axis, resize tap by tap instead of with one dense matmul.
_DENSE_LIMIT = 4_000_000


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic')."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


@functools.lru_cache(maxsize=256)
def _contributions(in_len: int, out_len: int, scale: float, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per output sample, the input indices (out_len, taps) and normalised weights (out_len, taps)."""
    kernel_width = 4.0
    if scale < 1 and antialias:
        kernel_width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    distance = u[:, None] - indices
    if scale < 1 and antialias:
        weights = scale * cubic(distance * scale)
    else:
        weights = cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    # MATLAB's symmetric padding: ..., 2, 1 | 1, 2, ..., n | n, n-1, ...
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    indices = mirror[(indices.astype(np.int64) - 1) % (2 * in_len)]
    keep = np.any(weights != 0, axis=0)
    return indices[:, keep], weights[:, keep]


@functools.lru_cache(maxsize=256)
def _dense_matrix(in_len: int, out_len: int, scale: float, antialias: bool) -> np.ndarray:
    indices, weights = _contributions(in_len, out_len, scale, antialias)
    matrix = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(matrix, (np.repeat(np.arange(out_len), indices.shape[1]), indices.ravel()), weights.ravel())
    return matrix


def _resize_axis(x: torch.Tensor, dim: int, out_len: int, scale: float, antialias: bool) -> torch.Tensor:
    in_len = x.shape[dim]
    if in_len == out_len and scale == 1:
        return x
    if in_len * out_len <= _DENSE_LIMIT:
        matrix = torch.from_numpy(_dense_matrix(in_len, out_len, scale, antialias)).to(x.device, x.dtype)
        moved = x.movedim(dim, -1)
        return (moved @ matrix.T).movedim(-1, dim)
    indices, weights = _contributions(in_len, out_len, scale, antialias)
    idx = torch.from_numpy(indices).to(x.device)
    w = torch.from_numpy(weights).to(x.device, x.dtype)
    shape = [1] * x.dim()
    shape[dim] = out_len
    out = None
    for tap in range(idx.shape[1]):
        term = x.index_select(dim, idx[:, tap]) * w[:, tap].reshape(shape)
        out = term if out is None else out + term
    return out


# One scale for both axes, or (vertical, horizontal): the authors' gradual x2 passes through x1.5 on one axis only.
Scale = float | tuple[float, float]


def scale_pair(scale: Scale) -> tuple[float, float]:
    """(vertical, horizontal) of a scale given for both axes or per axis."""
    if isinstance(scale, (tuple, list)):
        return float(scale[0]), float(scale[1])
    return float(scale), float(scale)


def output_size(in_size: tuple[int, int], scale: Scale) -> tuple[int, int]:
    """MATLAB's output size for a scale: ceil(in * scale), per axis."""
    return tuple(int(math.ceil(n * s - 1e-9)) for n, s in zip(in_size, scale_pair(scale)))


def imresize(x: torch.Tensor, scale: Scale | None = None, out_size: tuple[int, int] | None = None,
             antialias: bool = True) -> torch.Tensor:
    """Bicubic resize of the last two dims of `x` (float tensor, any leading dims), as MATLAB's imresize.

    Give `scale` (one for both axes, or (vertical, horizontal)), `out_size`, or both (then `scale` sets the
    sampling geometry, as in MATLAB).
    """
    if scale is None and out_size is None:
        raise ValueError("imresize needs scale or out_size")
    in_size = tuple(x.shape[-2:])
    if out_size is None:
        out_size = output_size(in_size, scale)
    scales = scale_pair(scale) if scale is not None else (out_size[0] / in_size[0], out_size[1] / in_size[1])
    # Resize the axis that shrinks most first: fewer samples to carry into the second pass.
    order = (0, 1) if out_size[0] / in_size[0] <= out_size[1] / in_size[1] else (1, 0)
    for axis in order:
        x = _resize_axis(x, x.dim() - 2 + axis, out_size[axis], scales[axis], antialias)
    return x


def _centred_kernel(kernel: np.ndarray, factor: int) -> np.ndarray:
    """Pad and shift `kernel` so that correlating and sampling at i * factor centres each LR pixel on its HR block."""
    from scipy import ndimage

    kernel = np.asarray(kernel, dtype=np.float64)
    kernel = kernel / kernel.sum()
    size = max(kernel.shape) + 2 * factor
    size += 1 - size % 2
    padded = np.zeros((size, size))
    oy, ox = (size - kernel.shape[0]) // 2, (size - kernel.shape[1]) // 2
    padded[oy:oy + kernel.shape[0], ox:ox + kernel.shape[1]] = kernel
    centre_of_mass = np.array(ndimage.center_of_mass(padded))
    wanted = (size - 1) / 2 + (factor - 1) / 2
    shifted = ndimage.shift(padded, wanted - centre_of_mass, order=1, mode="constant")
    return shifted / shifted.sum()


# How an LR pixel lines up with its HR pixels when a blur kernel makes the LR image (see kernel_downscale).
KERNEL_ALIGNMENTS = ("direct", "centred")


def symmetric_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Pad the last two dims by mirroring with the edge repeated (d c b a | a b c d | d c b a), MATLAB's
    'symmetric' and scipy.ndimage's 'reflect'; any pad width, even wider than the image (it mirrors again)."""
    def indices(n: int, before: int, after: int) -> torch.Tensor:
        i = torch.arange(-before, n + after, device=x.device) % (2 * n)
        return torch.where(i < n, i, 2 * n - 1 - i)

    h, w = x.shape[-2:]
    return x.index_select(-2, indices(h, top, bottom)).index_select(-1, indices(w, left, right))


def kernel_downscale(x: torch.Tensor, kernel: np.ndarray, factor: int, alignment: str = "centred") -> torch.Tensor:
    """Blur `x` (N, C, H, W) with `kernel` and keep every `factor`-th pixel from the first (integer factors).

    `alignment` says where each LR pixel sits on the HR grid:
    - "direct": the kernel is correlated as given (its middle element, index size // 2, over the pixel) and
      pixels 0, f, 2f, ... are kept, as scipy.ndimage.correlate and slicing do; this is how MZSR's released
      test sets were made, how the authors' `imresize` applies a numeric kernel, and the form KernelGAN writes
      its estimates in (it shifts them itself).
    - "centred": the kernel's centre of mass is first moved so that each LR pixel lands on the centre of its
      f x f HR block, which is where a camera's pixel sits (and where MATLAB's bicubic puts it).
    The border is mirrored (symmetric), so any kernel works on any image size.
    """
    if alignment not in KERNEL_ALIGNMENTS:
        raise ValueError(f"alignment must be one of {KERNEL_ALIGNMENTS}; got {alignment!r}")
    if alignment == "centred":
        kernel = _centred_kernel(kernel, factor)
    else:
        kernel = np.asarray(kernel, dtype=np.float64)
        kernel = kernel / kernel.sum()
    k = torch.from_numpy(kernel).to(x.device, x.dtype)
    (kh, kw), channels = k.shape, x.shape[1]
    weight = k.expand(channels, 1, kh, kw).contiguous()
    padded = symmetric_pad(x, kh // 2, (kh - 1) // 2, kw // 2, (kw - 1) // 2)
    # Strided: only the kept samples, rows and columns 0, f, 2f, ... (ceil(H / f) of them), are computed.
    return F.conv2d(padded, weight, stride=factor, groups=channels)


def load_kernel(path: str) -> np.ndarray:
    """Read a 2-D blur kernel from .npy or .mat (the first 2-D numeric array in the file)."""
    from app.errors import ConfigError

    try:
        if path.endswith(".npy"):
            kernel = np.load(path)
        elif path.endswith(".mat"):
            from scipy.io import loadmat

            arrays = [v for k, v in loadmat(path).items() if not k.startswith("__")]
            kernel = next(a for a in arrays if isinstance(a, np.ndarray) and a.ndim == 2)
        else:
            raise ConfigError("kernel", f"{path}: expected a .npy or .mat file")
    except ConfigError:
        raise
    except Exception as exc:  # numpy and scipy raise many types for a damaged file; all mean "unreadable"
        raise ConfigError("kernel", f"cannot read a 2-D kernel from {path}: {exc}") from exc
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or kernel.sum() <= 0 or not np.all(np.isfinite(kernel)):
        raise ConfigError("kernel", f"{path}: a kernel must be a finite 2-D array with a positive sum")
    return kernel
