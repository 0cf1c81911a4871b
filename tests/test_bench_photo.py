"""The photo8x benchmark protocol: its degradations, its choice of regions, and one tiny run of the web job path."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from app.bench import photo8x
from app.bench.__main__ import main as bench_main
from app.engine.image_io import to_uint8
from app.engine.metrics import rgb_to_y
from app.engine.resize import imresize
from app.jobs import Box

TINY = ["model_depth=2", "model_width=8", "num_epochs=3", "crop_size=16", "min_iters=0", "eval_every=1",
        "lr_decay_step=2", "lr_decay_range=4", "warm_start=null", "later_warm_start=null", "device=cpu", "num_threads=1",
        "job_time_budget_s=5", "self_check_fallback=false"]


def decode(data: bytes) -> np.ndarray:
    assert data.startswith(b"\xff\xd8\xff")
    with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
        return np.asarray(image.convert("RGB"))


def smooth_photo(height: int, width: int, seed: int) -> np.ndarray:
    """(H, W, 3) uint8 of a few slow random waves per channel: detail that survives an 8x reduction."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    planes = [128 + sum(40 * np.sin(x * fx + y * fy + phase)
                        for fx, fy, phase in rng.uniform((-0.08, -0.08, 0), (0.08, 0.08, 6.3), (3, 3)))
              for _ in range(3)]
    return np.clip(np.round(np.stack(planes, axis=-1)), 0, 255).astype(np.uint8)


@pytest.fixture
def hr(make_image) -> np.ndarray:
    return np.asarray(make_image(64, 48))


@pytest.fixture
def gray_hr() -> np.ndarray:
    """A smooth gray picture (R = G = B), so that JPEG's chroma subsampling loses nothing."""
    y, x = np.mgrid[0:48, 0:64].astype(np.float64)
    plane = np.round(128 + 60 * np.sin(x / 9.0) * np.cos(y / 13.0)).astype(np.uint8)
    return np.repeat(plane[:, :, None], 3, axis=2)


@pytest.mark.parametrize("name", list(photo8x.DEGRADATIONS))
def test_every_degradation_makes_an_8x_smaller_jpeg_of_the_photo_cropped_to_a_multiple_of_8(hr, name):
    assert decode(photo8x.DEGRADATIONS[name](hr)).shape == (6, 8, 3)
    padded = np.pad(hr, ((0, 5), (0, 7), (0, 0)), mode="edge")  # 71x53: cropped back to 64x48, not resized
    assert photo8x.DEGRADATIONS[name](padded) == photo8x.DEGRADATIONS[name](hr)


def test_the_bicubic_degradations_are_matlab_imresize_then_jpeg(hr):
    expected = to_uint8(imresize(torch.from_numpy(hr.transpose(2, 0, 1) / 255.0)[None], 1 / 8))
    for name in ("bicubic-q85", "bicubic-q60"):
        np.testing.assert_array_equal(photo8x.DEGRADATIONS[name].small(hr), expected)
    errors = {name: np.abs(rgb_to_y(decode(photo8x.DEGRADATIONS[name](hr))) - rgb_to_y(expected)).mean()
              for name in ("bicubic-q85", "bicubic-q60")}
    assert errors["bicubic-q85"] < 4 and errors["bicubic-q85"] < errors["bicubic-q60"] < 10


def gaussian_sample(plane: np.ndarray, sigma: float, y: float, x: float) -> float:
    """The photo blurred by a Gaussian of `sigma`, read at (y, x): a direct, normalised sum over every pixel."""
    rows, cols = np.mgrid[0:plane.shape[0], 0:plane.shape[1]]
    weights = np.exp(-((rows - y) ** 2 + (cols - x) ** 2) / (2 * sigma ** 2))
    return float((weights * plane).sum() / weights.sum())


@pytest.mark.parametrize("name, sigma", [("blur3-q85", 3.0), ("blur5-q85", 5.0)])
def test_the_blur_degradations_sample_the_blurred_photo_at_block_centres(make_image, gray_hr, name, sigma):
    """Small pixel i is the blurred photo at 8i + 3.5, where the bicubic convention (and the enlargement) puts it;
    checked away from the borders (which are padded) against a direct sum."""
    hr = np.asarray(make_image(192, 160))
    small = photo8x.DEGRADATIONS[name].small(hr).astype(np.float64)
    assert small.shape == (20, 24, 3)
    margin = int(np.ceil(4 * sigma / 8)) + 1
    for i in range(margin, small.shape[0] - margin):
        for j in range(margin, small.shape[1] - margin):
            for c in range(3):
                expected = gaussian_sample(hr[:, :, c].astype(np.float64), sigma, 8 * i + 3.5, 8 * j + 3.5)
                assert abs(small[i, j, c] - expected) <= 0.51
    lossless = dataclasses.replace(photo8x.DEGRADATIONS[name], quality=100)
    decoded = decode(lossless(gray_hr)).astype(np.float64)
    np.testing.assert_allclose(decoded, photo8x.DEGRADATIONS[name].small(gray_hr), atol=2)


def test_the_noisy_degradation_adds_noise_drawn_from_the_seed(hr):
    noisy, clean = photo8x.DEGRADATIONS["blur3-noise-q85"], photo8x.DEGRADATIONS["blur3-q85"]
    difference = noisy.small(hr, seed=0).astype(np.float64) - clean.small(hr, seed=0)
    assert 0 < np.abs(difference).max() <= 10 and 1 < difference.std() < 3
    assert noisy(hr, seed=0) == noisy(hr, seed=0)
    assert noisy(hr, seed=0) != noisy(hr, seed=1)
    assert clean(hr, seed=0) == clean(hr, seed=1)


def test_noise_without_blur_is_refused():
    with pytest.raises(ValueError, match="blur_sigma"):
        photo8x.Degradation("bicubic-noise", noise_std=0.01)


@pytest.fixture
def quadrant() -> np.ndarray:
    """128x128, flat gray except a textured bottom-right quadrant."""
    image = np.full((128, 128, 3), 120, dtype=np.uint8)
    image[64:, 64:] = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return image


def test_regions_are_the_most_detailed_non_overlapping_windows(quadrant):
    assert photo8x.choose_regions(quadrant, 1) == [Box(64, 64, 64, 64)]
    regions = photo8x.choose_regions(quadrant, 4)
    assert regions == photo8x.choose_regions(quadrant, 4)
    assert len(regions) == 4 and regions[0] == Box(64, 64, 64, 64)
    for i, a in enumerate(regions):
        assert a.width == a.height == 64 and a.x % 16 == 0 and a.y % 16 == 0
        assert 0 <= a.x <= 64 and 0 <= a.y <= 64
        for b in regions[i + 1:]:
            assert abs(a.x - b.x) >= 64 or abs(a.y - b.y) >= 64
    assert len(photo8x.choose_regions(quadrant, 10)) == 4  # no more fit


def test_a_photo_smaller_than_a_region_gets_one_region_shrunk_to_it():
    small = np.random.default_rng(1).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    assert photo8x.choose_regions(small, 2) == [Box(0, 0, 32, 24)]


def test_the_web_job_path_end_to_end(tmp_path, capsys):
    folder = tmp_path / "hr"
    folder.mkdir()
    Image.fromarray(smooth_photo(192, 256, 0)).save(folder / "alpha.png")
    Image.fromarray(smooth_photo(192, 256, 1)).save(folder / "beta.png")
    out = tmp_path / "results"
    code = bench_main(["photo8x", "--data", str(folder), "--photos", "1", "--regions", "1",
                       "--degradations", "bicubic-q85", "--methods", "job", "off", "--out", str(out),
                       "--set", *TINY])
    assert code == 0
    report = json.loads((out / "photo8x-job-off-bicubic-q85.json").read_text())
    assert report["protocol"] == "photo8x" and report["data"] == [str(folder)] and report["device"].startswith("cpu")
    assert report["methods"] == ["job", "off"] and report["degradations"] == ["bicubic-q85"]
    assert report["engine"]["job"]["time_budget_s"] == 5 and report["engine"]["off"]["time_budget_s"] == 1e-6
    assert report["engine"]["job"]["model_depth"] == 2 and report["engine"]["job"]["scale_times"] == 3
    rows = report["rows"]
    assert [r["method"] for r in rows] == ["bicubic", "job", "off"]
    for r in rows:
        assert r["photo"] == "hr-alpha" and r["degradation"] == "bicubic-q85" and r["region"] == 0
        assert r["box"] == [0, 0, 32, 24]  # the 32x24 small photo holds one region, shrunk to it
        assert 20 < r["psnr"] < 100 and 0.5 < r["ssim"] <= 1
    bicubic, job, off = rows
    assert bicubic["gain"] == 0 and bicubic["seconds"] is None
    for r in (job, off):
        assert r["gain"] == pytest.approx(r["psnr"] - bicubic["psnr"])
        assert r["seconds"] > 0 and r["device"].startswith("cpu")
    assert 0 < job["iterations"] <= 9 and off["iterations"] == 0  # training off: the starting weights alone
    summary = report["summary"]["bicubic-q85"]
    assert summary["regions"] == 1 and summary["bicubic_psnr"] == pytest.approx(bicubic["psnr"])
    assert summary["methods"]["job"]["gain"] == pytest.approx(job["gain"])
    assert summary["methods"]["off"]["seconds"] == pytest.approx(off["seconds"])
    assert summary["learning_gain"] == pytest.approx(job["psnr"] - off["psnr"])
    with Image.open(out / "strips" / "strip-hr-alpha-bicubic-q85-r0.png") as strip:
        assert strip.size == (4 * 256, 192)  # bicubic | job | off | truth
    assert not list((out / "strips").glob("*beta*"))
    markdown = (out / "photo8x-job-off-bicubic-q85.md").read_text()
    assert "| hr-alpha | bicubic-q85 | 0 | job |" in markdown and "learning gain (job - off) dB" in markdown
    printed = capsys.readouterr().out
    assert "| bicubic-q85 | 1 |" in printed and "job dB vs bicubic" in printed


def test_the_bench_command_runs_the_ideal_protocol_unless_told_otherwise(tmp_path, capsys):
    for argv in (["--data", str(tmp_path)], ["photo8x", "--data", str(tmp_path)]):
        with pytest.raises(SystemExit) as excinfo:
            bench_main([*argv, "--out", str(tmp_path / "r")])
        assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert "python -m app.bench: error: no images found" in err
    assert "python -m app.bench photo8x: error: no photos found" in err
