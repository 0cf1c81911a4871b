"""Conversions between PIL images and the engine's float tensors, and image files read and written safely."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from app.errors import BadImageError


def load_image(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode an image file, with its EXIF orientation applied."""
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except FileNotFoundError as exc:
        raise BadImageError(f"image not found: {path}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise BadImageError(f"cannot decode image {path}: {exc}") from exc


def save_image(image: Image.Image, path: str | os.PathLike) -> None:
    """Write `image` to `path` atomically: a temporary file in the same folder, renamed when complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise BadImageError(f"unknown output image type: {path.suffix or path.name}")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            image.save(f, format=fmt)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Planes:
    """An image split for the engine: colour as (1, 3, H, W) or (1, 1, H, W) floats in [0, 1], and alpha."""

    colour: torch.Tensor
    alpha: torch.Tensor | None
    grayscale: bool


def to_planes(image: Image.Image) -> Planes:
    """Split a PIL image of any common mode into colour and alpha planes."""
    alpha = None
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA" if image.mode != "LA" else "LA")
        alpha = _to_tensor(image.getchannel("A"))
        image = image.convert("RGB" if image.mode == "RGBA" else "L")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float32) / (65535.0 if image.mode.startswith("I;16") else 255.0)
        return Planes(torch.from_numpy(np.clip(array, 0, 1))[None, None], alpha, True)
    grayscale = image.mode in ("L", "1", "F")
    image = image.convert("L" if grayscale else "RGB")
    return Planes(_to_tensor(image), alpha, grayscale)


def _to_tensor(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.transpose(2, 0, 1).copy())[None]


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) floats in [0, 1] -> (H, W, C) uint8, rounded."""
    return (x[0].detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy())


def from_planes(colour: torch.Tensor, alpha: torch.Tensor | None) -> Image.Image:
    """Inverse of `to_planes`: (1, 1 or 3, H, W) colour and optional (1, 1, H, W) alpha -> PIL image."""
    array = to_uint8(colour)
    if alpha is not None:
        array = np.concatenate([array, to_uint8(alpha)], axis=2)
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def luma(image: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) luma (BT.601 weights, as MATLAB's rgb2ycbcr before its offset) of (N, 3, H, W) images; a
    single channel is its own luma."""
    if image.shape[1] == 1:
        return image
    return 0.299 * image[:, 0:1] + 0.587 * image[:, 1:2] + 0.114 * image[:, 2:3]


def centre_crop(image: torch.Tensor, side: int) -> torch.Tensor:
    """The middle `side` x `side` of an (N, C, H, W) image (a side shorter than `side` is kept whole)."""
    h, w = image.shape[-2:]
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[..., y:y + side, x:x + side]
