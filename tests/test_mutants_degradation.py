"""Behaviours of app/engine/degradation.py that mutation testing found unpinned: what the JPEG sons come out as, the
noise read from an image of two blocks, and the details of the kernels and the plan."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.engine.degradation import estimate_noise, jpeg_compress
from app.engine.jpeg import JpegProfile
from tests.conftest import pattern


def picture(batch: int = 2) -> torch.Tensor:
    images = [pattern(24, 32), pattern(24, 32)[::-1]]
    return torch.from_numpy(np.stack(images[:batch]).copy()).permute(0, 3, 1, 2).double() / 255


def test_jpeg_sons_stay_in_the_unit_range_and_near_what_went_in():
    batch = picture()
    out = jpeg_compress(JpegProfile.standard(75))(batch)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert float((out - batch).abs().mean()) < 0.15
    assert out.device == batch.device and out.dtype == batch.dtype


@pytest.mark.parametrize("low, high", [(-0.3, 1.0), (0.0, 1.4), (-0.2, 1.2)])
def test_a_son_pushed_past_black_or_white_by_noise_is_compressed_as_its_clipped_self(low, high):
    # Noise goes on before compression, so a son may leave [0, 1]; the encoder sees it clipped, never wrapped round.
    batch = picture()
    noisy = low + (high - low) * batch
    compress = jpeg_compress(JpegProfile.standard(90))
    torch.testing.assert_close(compress(noisy), compress(noisy.clamp(0, 1)), rtol=0, atol=0)


def test_an_image_of_two_blocks_reads_the_low_quantile_of_both_not_the_first():
    # 18 x 34 px: a 16 x 32 response, two 16 px blocks side by side; the left one noisy, the right one nearly flat.
    grain = torch.randn(1, 1, 18, 34, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    image = 0.5 + grain * torch.where(torch.arange(34) < 17, 0.04, 0.004).double()
    left = estimate_noise(image[..., :18])
    right = estimate_noise(image[..., 17:])
    both = estimate_noise(image)
    assert right < both < left  # between the two, near the flat block's
    assert both < right + 0.2 * (left - right)
