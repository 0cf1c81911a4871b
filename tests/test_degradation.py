"""The photo's own degradation: its JPEG tables reused on the sons, its noise level and the blur kernels."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from app.engine.config import EngineConfig
from app.engine.degradation import (KERNEL_SIGMAS, SonDegradation, _nearest_distance, _patches, blur_downscale,
                                    estimate_kernel, estimate_noise, gaussian_kernel, jpeg_compress, son_kernel)
from app.engine.jpeg import JpegProfile, ijg_table
from app.engine.pairs import lr_son, lr_son_small, make_downscale
from app.engine.resize import kernel_downscale
from tests.conftest import pattern


def jpeg_bytes(pixels: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture
def photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    noisy = pattern(48, 64).astype(np.float64) + rng.normal(0, 6, (48, 64, 3))
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("quality", [30, 60, 85, 95])
@pytest.mark.parametrize("subsampling", [0, 1, 2])
def test_profile_reads_quality_and_subsampling_and_reencodes_as_the_photo_was(photo, quality, subsampling):
    data = jpeg_bytes(photo, quality=quality, subsampling=subsampling)
    profile = JpegProfile.read(data)
    assert (profile.quality, profile.subsampling) == (quality, subsampling)
    assert len(profile.qtables) == 2 and all(len(t) == 64 for t in profile.qtables)
    assert profile.qtables[0] == tuple(ijg_table(quality))
    # The photo's tables and subsampling, reused: the same pixels as Pillow's own encoding at that quality.
    other = np.ascontiguousarray(photo[::-1, ::-1])
    np.testing.assert_array_equal(decode(profile.encode(other)),
                                  decode(jpeg_bytes(other, quality=quality, subsampling=subsampling)))
    assert JpegProfile.read(profile.encode(other)) == profile


def test_profile_keeps_tables_that_no_quality_setting_makes(photo):
    camera = [[2 + (i % 8) + (i // 8) for i in range(64)], [5 + i // 4 for i in range(64)]]
    profile = JpegProfile.read(jpeg_bytes(photo, qtables=camera, subsampling=1))
    assert profile.qtables == tuple(tuple(t) for t in camera) and profile.subsampling == 1
    assert JpegProfile.read(profile.encode(photo)).qtables == profile.qtables
    assert 90 <= profile.quality <= 100  # small steps: a high quality, the nearest IJG table


def test_a_cmyk_jpeg_with_one_table_keeps_colour_sons(photo):
    buffer = io.BytesIO()
    Image.fromarray(photo).convert("CMYK").save(buffer, format="JPEG", quality=70)
    profile = JpegProfile.read(buffer.getvalue())
    assert len(profile.qtables) == 1 and not profile.grayscale and profile.quality == 70
    out = profile.roundtrip(photo)
    assert out.shape == photo.shape and not (out[..., 0] == out[..., 2]).all()


def test_profile_survives_json_as_the_redis_queue_carries_it(photo):
    import dataclasses
    import json

    for profile in (JpegProfile.read(jpeg_bytes(photo, quality=77, subsampling=1)),
                    JpegProfile.read(jpeg_bytes(photo[:, :, 0], quality=50))):
        assert JpegProfile.from_dict(json.loads(json.dumps(dataclasses.asdict(profile)))) == profile


def test_grayscale_profile_compresses_luma_only(photo):
    gray = photo[:, :, 1]
    profile = JpegProfile.read(jpeg_bytes(gray, quality=70))
    assert profile.grayscale and profile.describe() == {"quality": 70, "subsampling": "grayscale"}
    out = profile.roundtrip(gray)
    assert out.shape == gray.shape and out.dtype == np.uint8
    rgb = profile.roundtrip(photo)
    assert rgb.shape == photo.shape and (rgb[..., 0] == rgb[..., 2]).all()


@pytest.mark.parametrize("data", [b"", b"hello", b"\xff\xd8\xff" + bytes(100)])
def test_profile_of_what_is_not_a_jpeg_is_none(data):
    assert JpegProfile.read(data) is None


def test_profile_of_a_png_is_none(photo):
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="PNG")
    assert JpegProfile.read(buffer.getvalue()) is None


def test_standard_profile_is_what_pillow_writes():
    assert JpegProfile.standard(42, 0) == JpegProfile.read(jpeg_bytes(np.zeros((8, 8, 3), np.uint8), quality=42,
                                                                      subsampling=0))


def test_jpeg_compress_on_a_batch_matches_each_image_through_pillow(photo):
    profile = JpegProfile.standard(50)
    batch = torch.from_numpy(np.stack([photo, photo[::-1].copy()])).permute(0, 3, 1, 2).double() / 255
    out = jpeg_compress(profile)(batch)
    assert out.shape == batch.shape and out.dtype == batch.dtype
    for image, compressed in zip(batch, out):
        pixels = (image.permute(1, 2, 0) * 255).round().byte().numpy()
        expected = profile.roundtrip(np.ascontiguousarray(pixels))
        np.testing.assert_array_equal((compressed.permute(1, 2, 0) * 255).round().byte().numpy(), expected)
    assert not torch.equal(out, batch)
    luma = jpeg_compress(profile)(batch[:, :1])
    assert luma.shape == (2, 1, 48, 64)


def smooth_picture(size: int = 128) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    base = 0.5 + 0.3 * torch.sin(x / 23.0) * torch.cos(y / 31.0)
    return torch.stack([base, base * 0.8 + 0.1, 1 - base]).double()[None]


@pytest.mark.parametrize("sigma", [2 / 255, 5 / 255, 10 / 255])
def test_noise_estimate_finds_a_known_noise_level(sigma):
    generator = torch.Generator().manual_seed(1)
    clean = smooth_picture()
    noisy = clean + sigma * torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
    assert estimate_noise(noisy) == pytest.approx(sigma, rel=0.2)
    assert estimate_noise(clean) < 0.3 / 255


def test_noise_estimate_is_not_fooled_by_texture_in_part_of_the_picture():
    picture = smooth_picture()
    texture = torch.from_numpy(pattern(64, 64).transpose(2, 0, 1) / 255.0)[None]
    picture[..., :64, :64] = texture  # a quarter of the picture is sharp detail, the rest is clean
    assert estimate_noise(picture) < 0.5 / 255
    assert estimate_noise(texture) > 5 / 255  # what a whole-image estimate would have taken for noise


def test_son_degradation_plan_follows_the_config(photo):
    profile = JpegProfile.standard(60)
    source = smooth_picture() + 0.02 * torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0),
                                                   dtype=torch.float64)
    measured = SonDegradation.plan(EngineConfig(estimate_noise=True, sons_jpeg=True), source, profile)
    assert measured.noise_estimated and measured.noise_std == pytest.approx(0.02, rel=0.2)
    assert measured.jpeg == profile and measured.compress is not None
    assert measured.describe() == {"noise_std": round(measured.noise_std, 5), "noise_estimated": True,
                                   "jpeg": {"quality": 60, "subsampling": "4:2:0"}, "kernel": None,
                                   "blur_std": None, "blurry": False}
    manual = SonDegradation.plan(EngineConfig(noise_std=0.0, sons_jpeg=False), source, profile)
    assert (manual.noise_std, manual.noise_estimated, manual.jpeg, manual.compress) == (0.0, False, None, None)
    # A photo that is not a JPEG: nothing to reuse, whatever the config says.
    assert SonDegradation.plan(EngineConfig(sons_jpeg=True), source, None).compress is None


def test_lr_son_compresses_the_small_son_before_enlarging():
    seen = []

    def compress(lr: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(lr.shape))
        return lr * 0 + 0.5

    father = smooth_picture(32)
    son = lr_son(father, 2.0, make_downscale(2.0, None), 0.0, compress=compress)
    assert seen == [(1, 3, 16, 16)] and son.shape == father.shape
    assert torch.allclose(son, torch.full_like(son, 0.5))


@pytest.mark.parametrize("factor", [2, 3, 8])
def test_gaussian_kernel_is_centred_on_the_block_it_samples(factor):
    kernel = gaussian_kernel(1.2, 0.7, 0.4, factor)
    assert kernel.sum() == pytest.approx(1.0)
    y, x = np.mgrid[0:kernel.shape[0], 0:kernel.shape[1]]
    centre = (kernel.shape[0] - 1) / 2 + (factor - 1) / 2
    assert (kernel * y).sum() == pytest.approx(centre) and (kernel * x).sum() == pytest.approx(centre)


def test_blur_downscale_matches_the_engines_kernel_downscale_per_image():
    kernels = [gaussian_kernel(1.0, 1.0, 0.0, 2, size=13), gaussian_kernel(0.5, 1.5, 0.3, 2, size=13)]
    images = torch.rand(2, 3, 40, 36, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = blur_downscale(images, torch.from_numpy(np.stack(kernels)), 2)
    assert out.shape == (2, 3, 20, 18)
    # The engine's path recentres the kernel by its centre of mass: the same place for these symmetric kernels.
    # Borders differ (replicate against reflect padding), the inside agrees.
    for image, kernel, result in zip(images, kernels, out):
        expected = kernel_downscale(image[None], kernel, 2)[0]
        torch.testing.assert_close(result[:, 4:-4, 4:-4], expected[:, 4:-4, 4:-4], rtol=0, atol=1e-3)


def dead_leaves(side: int, seed: int, count: int = 6000, r_min: float = 4.0, r_max: float = 400.0) -> torch.Tensor:
    """The dead-leaves model of natural images (Lee, Mumford and Huang 2001): opaque grey disks of radius density
    r^-3, which makes the scene look alike at every scale, edges included; gray RGB, 8-bit levels."""
    rng = np.random.default_rng(seed)
    plane = np.full((side, side), 0.5)
    y, x = np.mgrid[0:side, 0:side]
    radius = 1 / np.sqrt(1 / r_min ** 2 - rng.random(count) * (1 / r_min ** 2 - 1 / r_max ** 2))
    cx, cy, grey = rng.random(count) * side, rng.random(count) * side, rng.random(count)
    for r, u, v, g in zip(radius, cx, cy, grey):
        x0, x1, y0, y1 = int(max(0, u - r)), int(min(side, u + r + 1)), int(max(0, v - r)), int(min(side, v + r + 1))
        if x0 < x1 and y0 < y1:
            inside = (x[y0:y1, x0:x1] - u) ** 2 + (y[y0:y1, x0:x1] - v) ** 2 <= r ** 2
            plane[y0:y1, x0:x1][inside] = g
    return torch.from_numpy(np.round(plane * 255) / 255)[None, None].expand(1, 3, side, side).contiguous()


def photo_of(scene: torch.Tensor, sigma: float) -> torch.Tensor:
    """`scene` made 8x smaller with a Gaussian of `sigma` scene pixels (centred on each block), 8-bit."""
    size = 2 * int(np.ceil(4 * sigma)) + 17
    photo = blur_downscale(scene, torch.from_numpy(gaussian_kernel(sigma, sigma, 0.0, 8, size))[None], 8)
    return (photo * 255).round() / 255


def test_kernel_estimate_finds_the_blur_of_a_photo_made_small_with_a_known_kernel():
    """A photo made 8x smaller with a Gaussian of `sigma` scene px is blurred sigma / 8 of its own pixels; its x2
    sons look the same per pixel when the son kernel adds sqrt(3) * sigma / 8 (Gaussians add in quadrature:
    (2 * s)^2 = s^2 + k^2). On this 128 px photo: sigma 5 (1.08) within 0.15 px; sigma 8 (1.73) reads up to
    0.35 low (1.4 to 1.65 over four scenes), sigma 3 (0.65) about 0.2 high (aliasing hides part of so small a
    blur); always in order."""
    scene = dead_leaves(1024, seed=1)
    estimates = {sigma: estimate_kernel(photo_of(scene, sigma), 2.0) for sigma in (3.0, 5.0, 8.0)}
    assert estimates[5.0].sigma == pytest.approx(np.sqrt(3) * 5.0 / 8, abs=0.15)
    assert estimates[8.0].sigma == pytest.approx(np.sqrt(3) * 8.0 / 8, abs=0.35)
    assert estimates[3.0].sigma == pytest.approx(np.sqrt(3) * 3.0 / 8, abs=0.35)
    assert estimates[3.0].sigma < estimates[5.0].sigma < estimates[8.0].sigma
    estimate = estimates[5.0]
    assert estimate.describe() == {"kind": "gaussian", "sigma": estimate.sigma, "size": estimate.kernel().shape[0]}
    assert estimate.kernel().sum() == pytest.approx(1.0)


def test_kernel_estimate_prefers_the_true_kernel_to_its_neighbours():
    """The chosen kernel's son holds the image's patches more closely than a son made much sharper or much
    blurrier (the principle the estimate rests on, checked on the same photo)."""
    photo = photo_of(dead_leaves(1024, seed=3), 8.0)
    chosen = estimate_kernel(photo, 2.0)
    queries = _patches(photo)[::7]

    def distance(sigma):
        son = lr_son_small(photo, make_downscale(2.0, son_kernel(sigma)), 0.0, None, None)
        return _nearest_distance(queries, _patches(son))

    assert chosen.sigma in KERNEL_SIGMAS
    assert distance(chosen.sigma) < distance(chosen.sigma - 0.6)
    assert distance(chosen.sigma) < distance(chosen.sigma + 0.6)


def test_a_photo_too_small_for_patches_gets_bicubic_sons():
    estimate = estimate_kernel(torch.rand(1, 3, 12, 30), 2.0)
    assert estimate.sigma is None and estimate.describe() == {"kind": "bicubic"}


def test_son_degradation_estimates_the_kernel_only_where_asked():
    photo = photo_of(dead_leaves(512, seed=2), 5.0)
    planned = SonDegradation.plan(EngineConfig(estimate_kernel=True), photo, None)
    assert planned.kernel is not None and planned.describe()["kernel"]["kind"] == "gaussian"
    assert SonDegradation.plan(EngineConfig(estimate_kernel=False), photo, None).kernel is None
    # A kernel file wins over the estimate, and a non-integer factor cannot use a kernel.
    assert SonDegradation.plan(EngineConfig(estimate_kernel=True, kernel="k.npy"), photo, None).kernel is None
    assert SonDegradation.plan(EngineConfig(estimate_kernel=True, scale_factor=1.5), photo, None).kernel is None
