"""The benchmark command on a temporary folder of tiny images: pairs, reports and their fields."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from app import bench
from app.bench import ideal
from app.engine.resize import imresize

TINY = ["model_depth=2", "model_width=8", "num_epochs=3", "crop_size=16", "min_iters=0", "eval_every=1",
        "lr_decay_step=2", "lr_decay_range=4", "self_ensemble=false", "back_projection_iters=1", "num_threads=1",
        "device=cpu", "patch_size=64", "self_check_fallback=false"]


@pytest.fixture
def data(make_image, tmp_path):
    folder = tmp_path / "hr"
    folder.mkdir()
    make_image(26, 21).save(folder / "alpha.png")
    Image.fromarray(np.asarray(make_image(24, 24))[::-1].copy()).save(folder / "beta.png")
    (folder / "ignored.txt").write_text("not an image")
    return folder


def test_make_pair_crops_to_a_multiple_of_the_scale(data):
    hr, lr = bench.make_pair(data / "alpha.png", 4)
    assert hr.shape == (20, 24, 3) and hr.dtype == np.uint8
    original = np.asarray(Image.open(data / "alpha.png").convert("RGB"))
    np.testing.assert_array_equal(hr, original[:20, :24])  # a top-left crop, not a resize
    assert lr.size == (6, 5) and lr.mode == "RGB"
    x = torch.from_numpy(hr.transpose(2, 0, 1).astype(np.float64) / 255.0)[None]
    expected = (imresize(x, 0.25)[0].permute(1, 2, 0).clamp(0, 1) * 255).round().numpy()
    np.testing.assert_array_equal(np.asarray(lr), expected.astype(np.uint8))
    hr3, lr3 = bench.make_pair(data / "alpha.png", 3)
    assert hr3.shape[:2] == (21, 24) and lr3.size == (8, 7)


@pytest.mark.parametrize("scale, expected", [(2, (2.0, 1)), (4, (2.0, 2)), (8, (2.0, 3)), (3, (3.0, 1))])
def test_gradual_steps(scale, expected):
    assert bench.gradual_steps(scale) == expected


def test_main_writes_markdown_and_json(data, tmp_path, capsys):
    out = tmp_path / "results"
    code = bench.main(["--data", str(data), "--scale", "2", "--preset", "fast-scratch", "--out", str(out),
                       "--set", *TINY])
    assert code == 0
    report = json.loads((out / "bench-x2-fast-scratch.json").read_text())
    assert report["scale"] == 2 and report["data"] == [str(data)] and report["device"].startswith("cpu")
    assert report["torch"] == torch.__version__
    section = report["presets"]["fast-scratch"]
    assert section["config"]["model_depth"] == 2 and section["config"]["num_epochs"] == 3
    assert section["config"]["lr_decay_step"] == 2 and section["config"]["self_ensemble"] is False
    images = section["images"]
    assert [r["image"] for r in images] == ["alpha", "beta"]
    assert [r["size"] for r in images] == ["26x20", "24x24"]
    for r in images:
        assert set(r) >= {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim", "seconds", "iterations",
                          "iterations_per_step", "device", "train_gflops", "infer_gflops"}
        assert r["train_gflops"] > 0 and r["infer_gflops"] > 0
        assert 10 < r["psnr"] < 100 and 10 < r["bicubic_psnr"] < 100
        assert 0 < r["ssim"] <= 1 and 0 < r["bicubic_ssim"] <= 1
        assert r["iterations"] == 3 and r["iterations_per_step"] == [3] and r["seconds"] > 0
    summary = section["summary"]
    assert summary["psnr"] == pytest.approx(np.mean([r["psnr"] for r in images]))
    assert summary["median_iterations"] == 3
    assert summary["median_seconds"] == pytest.approx(float(np.median([r["seconds"] for r in images])))
    assert summary["train_gflops"] == pytest.approx(float(np.median([r["train_gflops"] for r in images])))
    markdown = (out / "bench-x2-fast-scratch.md").read_text()
    assert "| alpha | 26x20 |" in markdown and "| beta | 24x24 |" in markdown
    assert "train GFLOP/s" in markdown and "| **mean / median** |" in markdown
    assert f"{images[0]['psnr']:.2f}" in markdown and "Preset `fast-scratch`" in markdown
    assert markdown in capsys.readouterr().out


def test_main_compares_presets_and_filters_images(data, tmp_path):
    out = tmp_path / "results"
    code = bench.main(["--data", str(data), "--scale", "4", "--preset", "fast-scratch", "paper", "--images", "beta",
                       "--out", str(out), "--set", *TINY])
    assert code == 0
    report = json.loads((out / "bench-x4-fast-scratch-paper.json").read_text())
    assert list(report["presets"]) == ["fast-scratch", "paper"]
    for section in report["presets"].values():
        assert [r["image"] for r in section["images"]] == ["beta"]
        assert section["images"][0]["iterations_per_step"] == [3, 3]  # x4 as two x2 steps
        assert section["config"]["scale_factor"] == 2.0 and section["config"]["scale_times"] == 2
    assert "## Side by side" in (out / "bench-x4-fast-scratch-paper.md").read_text()


def test_no_images_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as excinfo:
        bench.main(["--data", str(tmp_path), "--out", str(tmp_path / "r")])
    assert excinfo.value.code == 2


@pytest.mark.parametrize("item, named", [("model_depth", "model_depth"), ("modle_depth=2", "modle_depth")])
def test_a_malformed_override_is_a_usage_error(data, tmp_path, capsys, item, named):
    with pytest.raises(SystemExit) as excinfo:
        bench.main(["--data", str(data), "--out", str(tmp_path / "r"), "--set", item])
    assert excinfo.value.code == 2
    assert named in capsys.readouterr().err


def test_the_gauss20_protocol_makes_lr_as_mzsrs_code_does(data):
    from tests.test_paper_fidelity import mzsr_direct, mzsr_kernel

    np.testing.assert_allclose(ideal.DEGRADATIONS["gauss2.0"], mzsr_kernel(15, 2.0), rtol=0, atol=1e-15)
    hr, lr = bench.make_pair(data / "alpha.png", 2, "gauss2.0")
    assert hr.shape == (20, 26, 3) and lr.size == (13, 10)
    expected = mzsr_direct(hr.astype(np.float64) / 255, mzsr_kernel(15, 2.0), 2)
    np.testing.assert_array_equal(np.asarray(lr), np.clip(np.round(expected * 255), 0, 255).astype(np.uint8))


def test_main_hands_the_gauss20_kernel_to_the_engine(data, tmp_path):
    out = tmp_path / "results"
    code = bench.main(["--data", str(data), "--scale", "2", "--degradation", "gauss2.0", "--preset", "fast-scratch",
                       "--out", str(out), "--images", "beta", "--set", *TINY])
    assert code == 0
    report = json.loads((out / "bench-x2-gauss2.0-fast-scratch.json").read_text())
    assert report["degradation"] == "gauss2.0"
    config = report["presets"]["fast-scratch"]["config"]
    assert config["kernel_alignment"] == "direct"
    np.testing.assert_array_equal(np.load(config["kernel"]), ideal.DEGRADATIONS["gauss2.0"])
    # The bicubic row is bicubic of the blurred LR image: well below the clean-bicubic case of the same image.
    blurred = report["presets"]["fast-scratch"]["images"][0]
    bench.main(["--data", str(data), "--scale", "2", "--preset", "fast-scratch", "--out", str(out),
                "--images", "beta", "--set", *TINY])
    clean = json.loads((out / "bench-x2-fast-scratch.json").read_text())["presets"]["fast-scratch"]["images"][0]
    assert blurred["bicubic_psnr"] < clean["bicubic_psnr"] - 1
    assert "gauss2.0 LR" in (out / "bench-x2-gauss2.0-fast-scratch.md").read_text()


def test_kernel_estimated_gives_the_engine_no_kernel_and_reports_its_estimate(data, tmp_path):
    out = tmp_path / "results"
    code = bench.main(["--data", str(data), "--scale", "2", "--degradation", "gauss2.0", "--kernel", "estimated",
                       "--preset", "fast-scratch", "--out", str(out), "--images", "beta", "--set", *TINY])
    assert code == 0
    report = json.loads((out / "bench-x2-gauss2.0-estimated-fast-scratch.json").read_text())
    assert report["kernel"] == "estimated"
    config = report["presets"]["fast-scratch"]["config"]
    assert config["kernel"] is None and config["estimate_kernel"] is True
    assert config["estimated_kernel_alignment"] == "direct"
    [row] = report["presets"]["fast-scratch"]["images"]
    assert row["kernel"]["kind"] in ("gaussian", "bicubic")
    assert "kernel estimated from the LR" in (out / "bench-x2-gauss2.0-estimated-fast-scratch.md").read_text()


def test_kernel_estimated_needs_a_blur_degradation(data, tmp_path, capsys):
    with pytest.raises(SystemExit) as excinfo:
        bench.main(["--data", str(data), "--kernel", "estimated", "--out", str(tmp_path)])
    assert excinfo.value.code == 2
    assert "--kernel estimated needs a blur degradation" in capsys.readouterr().err
