"""The shipped warm-start network: its file, recorded checksum and recipe, and the presets that use it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from app.engine.config import EngineConfig
from app.engine.network import ZSSRNet
from app.engine.presets import PRESETS, WARM_START_X2, preset_config
from app.engine.warm_start import load_weights, read_checkpoint, sha256
from app.errors import ConfigError

# The clean-bicubic network (presets, the ideal case), the photo network (blurry photos) and the one continued
# from it with more bicubic sons (the web service's default for JPEGs).
SHIPPED = [WARM_START_X2, WARM_START_X2.with_name("zssr_x2_photo.pt"),
           WARM_START_X2.with_name("zssr_x2_photo_sharp.pt")]


@pytest.fixture(params=SHIPPED, ids=lambda p: p.stem)
def shipped(request):
    return request.param


def test_shipped_weights_match_their_recorded_checksum(shipped):
    recorded = json.loads(shipped.with_suffix(".json").read_text())
    assert sha256(shipped) == recorded["sha256"]


def test_shipped_weights_record_a_recipe_on_training_sets_only(shipped):
    recipe = read_checkpoint(shipped)["recipe"]
    assert recipe["complete"] is True
    # The training sets, or the folder that holds them.
    assert {Path(d).name for d in recipe["data"]} <= {"T91", "General100", "BSD200", "train"}
    assert recipe["iterations"] > 0 and recipe["scale_factor"] == 2.0


def test_photo_weights_record_their_degradations_and_what_they_continued():
    recipe = read_checkpoint(SHIPPED[1])["recipe"]
    assert "JPEG" in recipe["degradation"] and "Gaussian blur" in recipe["degradation"]
    # Continued from the clean network's recipe (its three runs), on the same training sets.
    assert recipe["continued_from"] == read_checkpoint(SHIPPED[0])["recipe"]


def test_sharp_photo_weights_continue_the_photo_weights_with_three_quarters_bicubic_sons():
    recipe = read_checkpoint(SHIPPED[2])["recipe"]
    assert recipe["continued_from"] == read_checkpoint(SHIPPED[1])["recipe"]
    assert recipe["plan"]["bicubic_share"] == 0.75 and recipe["plan"]["photo"] is True
    assert recipe["degradation"].startswith("per crop: 75% MATLAB bicubic")


def test_config_json_profiles_start_photos_blurry_photos_and_the_rest_from_their_own_weights():
    from app.config import load_settings

    engine = load_settings().engine
    assert engine.warm_start == str(SHIPPED[0])  # lossless images, kernels given or estimated
    assert engine.with_profile("photo").warm_start == str(SHIPPED[2])
    assert engine.with_profile("blurry_photo").warm_start == str(SHIPPED[1])
    for name in ("lossless", "kernel_given", "kernel_estimated"):
        assert engine.with_profile(name).warm_start == str(SHIPPED[0]), name


def test_shipped_weights_load_into_the_paper_network_with_their_shapes(shipped):
    checkpoint = read_checkpoint(shipped)
    net = ZSSRNet(EngineConfig())
    assert {k: tuple(v.shape) for k, v in checkpoint["state_dict"].items()} == \
        {k: tuple(v.shape) for k, v in net.state_dict().items()}
    load_weights(net, shipped)
    # Trained: the last layer is no longer the zero it starts as, and the network is not the identity.
    assert net.layers[-1].weight.abs().max() > 0
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert (net(x) - x).abs().max() > 1e-3


def test_shipped_weights_refuse_another_architecture():
    with pytest.raises(ConfigError, match="warm_start"):
        load_weights(ZSSRNet(EngineConfig(model_width=32)), WARM_START_X2)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_validates_and_keeps_the_callers_device_and_scale(name):
    base = EngineConfig(device="cpu", scale_factor=3.0, scale_times=2, seed=7, noise_std=0.01)
    config = preset_config(name, base)
    assert (config.device, config.scale_factor, config.scale_times, config.seed) == ("cpu", 3.0, 2, 7)
    # The sons' noise is the preset's (the authors': none) unless the caller gives it with the preset.
    assert config.noise_std == 0.0
    assert preset_config(name, base, noise_std=0.01).noise_std == 0.01


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_preset_over_config_json_is_the_same_algorithm_as_over_the_defaults(name):
    """config.json's photo settings (profiles, measured noise, JPEG sons) do not leak into a preset."""
    from app.config import load_settings

    over_file = preset_config(name, load_settings().engine, device="cpu", scale_factor=2.0, scale_times=1)
    over_defaults = preset_config(name, EngineConfig(), device="cpu", scale_factor=2.0, scale_times=1)
    shaping = {k for k in PRESETS[name]} | {"estimate_noise", "sons_jpeg", "noise_std", "profiles", "profile"}
    differ = {k for k in shaping if getattr(over_file, k) != getattr(over_defaults, k)}
    assert not differ
    assert over_file.profiles is None and not over_file.estimate_noise and not over_file.sons_jpeg


def test_paper_preset_is_pure_zero_shot_whatever_the_base():
    config = preset_config("paper", EngineConfig(warm_start=str(WARM_START_X2), self_ensemble=False))
    assert config.warm_start is None and config.self_ensemble and config.num_epochs == 3000
    assert config.crop_size == 128 and config.back_projection_iters == 10


def test_fast_and_fast_scratch_differ_only_in_the_start():
    fast, scratch = preset_config("fast"), preset_config("fast-scratch")
    assert fast.warm_start == str(WARM_START_X2) and scratch.warm_start is None
    assert (fast.num_epochs, fast.crop_size) == (scratch.num_epochs, scratch.crop_size)


def test_an_unknown_preset_is_a_config_error():
    with pytest.raises(ConfigError, match="preset"):
        preset_config("quick")
