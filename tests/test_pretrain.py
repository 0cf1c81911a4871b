"""Pre-training's photo degradation: its JPEG step (app.pretrain.PhotoDegradation)."""

from __future__ import annotations

import numpy as np
import torch

from app import pretrain
from app.jpeg_profile import JpegProfile


def test_each_jpeg_profile_is_made_once_and_compresses_as_a_fresh_one(monkeypatch):
    made = []
    standard = JpegProfile.standard

    def counted(quality: int, subsampling: int = 2) -> JpegProfile:
        made.append((quality, subsampling))
        return standard(quality, subsampling)

    monkeypatch.setattr(pretrain.JpegProfile, "standard", staticmethod(counted))
    degradation = pretrain.PhotoDegradation(2)
    lr = torch.rand(16, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    first = degradation._jpeg(lr, np.random.default_rng(3))
    again = degradation._jpeg(lr, np.random.default_rng(3))
    assert torch.equal(first, again)
    assert len(made) == len(set(made)) == len(degradation.profiles) > 1  # the second batch made none

    # The same draws, each crop through a profile made afresh.
    rng = np.random.default_rng(3)
    pixels = (lr * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    expected = []
    for image in pixels:
        if rng.random() < 0.75:
            image = standard(int(rng.integers(30, 96)), 2 if rng.random() < 0.7 else 0).roundtrip(image.copy())
        expected.append(image)
    assert torch.equal(first, torch.from_numpy(np.stack(expected)).permute(0, 3, 1, 2).float() / 255)
