"""`father_augment: warp`, the authors' augmentation: random affine warps of the fathers on half the crops, the
geometry of each warp exact, and none where the kernel forbids turning a crop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from app.engine import super_resolve
from app.engine.config import EngineConfig
from app.engine.pairs import (FATHER_SCALES, WARP_MIN_SCALE, FatherPool, random_warp, warp_fit,
                              warped_crop)
from app.errors import ConfigError


def ramp(h: int, w: int, a: float = 1.0, b: float = 0.0) -> torch.Tensor:
    """A (1, 1, h, w) image a * y + b * x, scaled into [0, 1]: bicubic sampling reproduces it exactly."""
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                          indexing="ij")
    return ((a * y + b * x) / (a * h + b * w))[None, None]


def test_a_warped_crop_samples_the_father_where_its_matrix_says():
    father = ramp(90, 70, 1.0, 0.0)  # value = y / 90
    matrix = np.array([[0.8, -0.9], [0.6, 1.3]])  # crop (dy, dx) -> father (dy, dx)
    side = warp_fit(matrix, (90, 70))
    assert side >= 20
    crop = warped_crop(father, matrix, side, np.random.default_rng(3))[0, 0]
    # One step down the crop moves 0.8 father rows, one step right -0.9 rows: the ramp's slope 1/90 times that.
    np.testing.assert_allclose(crop.diff(dim=0).numpy(), 0.8 / 90, atol=1e-9)
    np.testing.assert_allclose(crop.diff(dim=1).numpy(), -0.9 / 90, atol=1e-9)
    across = warped_crop(ramp(90, 70, 0.0, 1.0), matrix, side, np.random.default_rng(3))[0, 0]
    np.testing.assert_allclose(across.diff(dim=0).numpy(), 0.6 / 70, atol=1e-9)
    np.testing.assert_allclose(across.diff(dim=1).numpy(), 1.3 / 70, atol=1e-9)


def test_a_warp_of_the_largest_side_that_fits_stays_inside_its_father():
    rng = np.random.default_rng(0)
    for _ in range(50):
        matrix = random_warp(rng)
        side = warp_fit(matrix, (60, 80))
        assert side >= 1
        for image in (ramp(60, 80, 1.0, 0.0), ramp(60, 80, 0.0, 1.0)):
            crop = warped_crop(image, matrix, side, rng)[0, 0]
            # Clamped by the border, a sample outside would break the ramp's constant steps.
            steps = crop.diff(dim=0)
            assert float((steps - steps.mean()).abs().max()) < 1e-9


def test_random_warps_shrink_turn_and_shear_within_the_authors_ranges():
    rng = np.random.default_rng(1)
    forwards = [np.linalg.inv(random_warp(rng)) for _ in range(2000)]
    # A shrink: the forward map's determinant (area kept) is at most about 1 and at least the smallest scale's.
    areas = np.array([abs(np.linalg.det(f)) for f in forwards])
    assert areas.max() < 1.1 and np.percentile(areas, 5) < 0.35 and areas.min() > (WARP_MIN_SCALE / 2) ** 2 * 0.8
    angles = np.array([np.arctan2(f[1, 0], f[0, 0]) for f in forwards])
    assert np.histogram(angles, bins=4, range=(-np.pi, np.pi))[0].min() > 400  # any angle, evenly


def test_a_warp_pool_holds_the_sources_alone_and_warps_about_half_the_crops():
    father = ramp(200, 200, 1.0, 0.0)
    plain = FatherPool.build([father], 2.0, 8)
    pool = FatherPool.build([father], 2.0, 8, warp=True)
    assert len(plain.fathers) == len(FATHER_SCALES) and len(pool.fathers) == 1
    rng = np.random.default_rng(0)
    kinds = {"as it is": 0, "turned": 0, "warped": 0}
    for _ in range(600):
        crop = pool.sample(rng, 32, 1, 2)[0, 0]
        dy, dx = float(crop.diff(dim=0).mean()), float(crop.diff(dim=1).mean())
        if abs(dy - 1 / 200) < 1e-9 and abs(dx) < 1e-9:
            kinds["as it is"] += 1  # or turned by the identity or the left-right mirror, 2 in 8 of the turned
        elif min(abs(abs(dy) - 1 / 200), abs(abs(dx) - 1 / 200)) < 1e-9 and min(abs(dy), abs(dx)) < 1e-9:
            kinds["turned"] += 1
        else:
            kinds["warped"] += 1
    # Expected shares: warped 50 %, a vertical ramp as it is 5 % + 45 % * 2 / 8 = 16.25 %, turned 33.75 %.
    assert 0.42 < kinds["warped"] / 600 < 0.58
    assert 0.11 < kinds["as it is"] / 600 < 0.22
    assert 0.27 < kinds["turned"] / 600 < 0.41


def test_no_warp_where_only_some_rotations_and_flips_keep_the_kernel():
    father = ramp(100, 100, 1.0, 0.0)
    pool = FatherPool.build([father], 2.0, 8, warp=True)
    rng = np.random.default_rng(0)
    for _ in range(100):
        crop = pool.sample(rng, 32, 1, 2, augment=(0, 2))[0, 0]  # the identity and the half turn
        assert float(crop.diff(dim=1).abs().max()) < 1e-9  # never turned by a quarter, never warped
        assert abs(abs(float(crop.diff(dim=0).mean())) - 1 / 100) < 1e-9


def test_a_small_father_cuts_the_side_of_a_warped_batch_but_never_below_half():
    pool = FatherPool.build([torch.rand(1, 3, 70, 60)], 2.0, 8, warp=True)
    rng = np.random.default_rng(0)
    sides = {pool.sample(rng, 64, 4, 2).shape[-1] for _ in range(100)}
    assert max(sides) == 60 and min(sides) >= 30 and all(s % 2 == 0 for s in sides)


def test_super_resolve_runs_with_warped_fathers_and_follows_the_seed():
    pixels = np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    picture = Image.fromarray(pixels)
    config = EngineConfig(model_width=8, model_depth=3, num_epochs=12, eval_every=4, crop_size=16,
                          father_augment="warp", self_ensemble=False, seed=5)
    first, second = super_resolve(picture, config), super_resolve(picture, config)
    assert first.image.size == (40, 48)
    assert np.array_equal(np.asarray(first.image), np.asarray(second.image))
    other = super_resolve(picture, config.replace(father_augment="dihedral"))
    assert not np.array_equal(np.asarray(first.image), np.asarray(other.image))


def test_father_augment_names_its_choices():
    with pytest.raises(ConfigError, match="father_augment"):
        EngineConfig(father_augment="affine")


def test_sampling_by_source_draws_the_input_as_often_as_a_four_times_larger_output():
    small, large = torch.zeros(1, 1, 40, 40), torch.ones(1, 1, 80, 80)
    by_area = FatherPool.build([small, large], 2.0, 8)
    by_source = FatherPool.build([small, large], 2.0, 8, by_source=True)
    n = len(FATHER_SCALES)
    assert len(by_source.fathers) == 2 * n
    # By area the larger output takes four fifths; by source each takes half, its copies by area within it.
    assert abs(by_area.probabilities[n:].sum() - 0.8) < 0.01
    assert abs(by_source.probabilities[:n].sum() - 0.5) < 1e-12
    np.testing.assert_allclose(by_source.probabilities[:n] / by_source.probabilities[0],
                               by_area.probabilities[:n] / by_area.probabilities[0])
    rng = np.random.default_rng(0)
    drawn = [float(by_source.sample(rng, 16, 1, 2).mean()) for _ in range(400)]
    assert 0.4 < np.mean(drawn) < 0.6  # the ones image is the larger source
