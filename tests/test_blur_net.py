"""The learned blur reader (app.engine.blur_net), its training script, and the engine's use of it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from app import blur_train
from app.engine.blur_net import BLUR_WEIGHTS, MIN_SIDE, BlurNet, load_blur_net, read_blur, read_blur_with
from app.engine.config import EngineConfig
from app.engine import degradation
from app.engine.degradation import KernelEstimate, SonDegradation, gaussian_kernel
from app.engine.resize import kernel_downscale
from app.errors import ConfigError
from tests.test_degradation import dead_leaves


def made_small(scene: torch.Tensor, sigma: float) -> torch.Tensor:
    """`scene` blurred with a Gaussian of `sigma` px and kept at pixels 0, 2, 4, ... (MZSR's protocol), 8-bit."""
    lr = kernel_downscale(scene, gaussian_kernel(sigma, sigma, 0.0, 1, 21), 2, "direct")
    return (lr.clamp(0, 1) * 255).round() / 255


@pytest.fixture(scope="module")
def scene() -> torch.Tensor:
    return dead_leaves(384, seed=5)


def test_the_shipped_reader_reads_a_known_blur_and_keeps_blurs_in_order(scene):
    """Dead leaves (a scene model it never saw) made small with Gaussians of std 0.8 to 2.2: each read within
    0.25 of the truth, and a wider blur always reads wider."""
    reads = [read_blur(made_small(scene, sigma)) for sigma in (0.8, 1.4, 2.2)]
    assert all(abs(read - sigma) <= 0.25 for read, sigma in zip(reads, (0.8, 1.4, 2.2))), reads
    assert reads[0] < reads[1] < reads[2]


def test_the_reading_does_not_depend_on_brightness_offset_or_image_size(scene):
    lr = made_small(scene, 1.4)
    whole = read_blur(lr)
    assert read_blur(lr * 0.8 + 0.1) == pytest.approx(whole, abs=0.1)  # contrast and level: the same blur
    assert read_blur(lr[..., :96, :128]) == pytest.approx(whole, abs=0.2)


def test_an_image_too_small_to_read_gets_no_reading_and_bicubic_sons():
    tiny = torch.rand(1, 3, MIN_SIDE - 1, 64)
    assert read_blur(tiny) is None
    config = EngineConfig(estimate_kernel=True, kernel_estimator="learned")
    assert SonDegradation.plan(config, tiny, None).kernel.describe() == {"kind": "bicubic"}


def test_son_degradation_uses_the_learned_reader_where_asked(scene):
    lr = made_small(scene, 1.4)
    planned = SonDegradation.plan(EngineConfig(estimate_kernel=True, kernel_estimator="learned"), lr, None)
    assert planned.kernel.sigma == pytest.approx(read_blur(lr), abs=0.006)
    described = planned.describe()["kernel"]
    assert described["kind"] == "gaussian" and described["sigma"] == planned.kernel.sigma
    assert SonDegradation.plan(EngineConfig(kernel_estimator="learned"), lr, None).kernel is None


@pytest.mark.parametrize("estimator, scale_factor, used", [
    ("auto", 2.0, "learned"), ("auto", 3.0, "recurrence"), ("learned", 2.0, "learned"),
    ("recurrence", 2.0, "recurrence")])
def test_auto_reads_with_the_learned_reader_where_it_was_trained(monkeypatch, estimator, scale_factor, used):
    monkeypatch.setattr(degradation, "read_kernel", lambda image: KernelEstimate(1.11, float("nan")))
    monkeypatch.setattr(degradation, "estimate_kernel", lambda image, *args: KernelEstimate(0.77, 0.0))
    config = EngineConfig(estimate_kernel=True, kernel_estimator=estimator, scale_factor=scale_factor)
    sigma = SonDegradation.plan(config, torch.rand(1, 3, 64, 64), None).kernel.sigma
    assert sigma == {"learned": 1.11, "recurrence": 0.77}[used]


def test_the_learned_reader_is_refused_at_a_scale_it_was_not_trained_for():
    with pytest.raises(ConfigError, match="kernel_estimator"):
        EngineConfig(estimate_kernel=True, kernel_estimator="learned", scale_factor=3)
    EngineConfig(kernel_estimator="learned", scale_factor=3)  # no estimate asked: nothing to refuse
    with pytest.raises(ConfigError, match="kernel_estimator"):
        EngineConfig(kernel_estimator="cnn")


def test_the_shipped_weights_carry_their_recipe_and_held_out_errors():
    net, recipe = load_blur_net()
    assert recipe["scale_factor"] == 2.0 and "Set5" not in recipe["data"]
    assert float(recipe["held_out"]["1.41"]["mean_abs_error"]) < 0.25
    assert json.loads(BLUR_WEIGHTS.with_suffix(".json").read_text())["iterations"] == recipe["iterations"]


def test_the_readout_weighs_locations_so_any_size_reads(scene):
    net = BlurNet()
    for side in (MIN_SIDE, 100):
        assert torch.isfinite(net(torch.rand(2, 1, side, side))).all()
    assert read_blur_with(net, torch.rand(1, 1, MIN_SIDE, MIN_SIDE)) > 0


def test_training_writes_weights_the_engine_loads_and_refuses_benchmark_sets(tmp_path, scene):
    data = tmp_path / "train"
    data.mkdir()
    for seed in range(3):
        plane = (dead_leaves(160, seed=seed, count=1500)[0, 0].numpy() * 255).astype(np.uint8)
        Image.fromarray(plane).convert("RGB").save(data / f"im{seed}.png")
    out = tmp_path / "blur.pt"
    assert blur_train.main(["--data", str(data), "--out", str(out), "--iterations", "3", "--batch", "2",
                            "--crop", "24"]) == 0
    net, recipe = load_blur_net(out)
    assert recipe["iterations"] == 3 and recipe["images"] == 2 and recipe["held_out_images"] == 1
    assert set(recipe["held_out"]) == {str(s) for s in blur_train.HELD_OUT_SIGMAS}
    assert json.loads(out.with_suffix(".json").read_text())["sha256"]
    assert not out.with_suffix(".tmp").exists()
    forbidden = tmp_path / "Set5"
    forbidden.mkdir()
    with pytest.raises(SystemExit, match="benchmark"):
        blur_train.main(["--data", str(forbidden), "--out", str(tmp_path / "x.pt"), "--iterations", "1"])


def test_training_lr_is_the_benchmark_protocol(scene):
    """The training crops are made small as the benchmark makes its LR (a Gaussian correlated as given, pixels
    0, 2, 4, ... kept, 8-bit): away from the border the two agree to the last level."""
    hr = scene[:, :1]
    ours = blur_train.make_lr(hr, torch.tensor([1.41]))
    theirs = made_small(hr, 1.41)
    assert torch.equal(ours[..., 12:-12, 12:-12], theirs[..., 12:-12, 12:-12])
