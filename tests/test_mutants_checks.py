"""Behaviours of app/engine/checks.py that mutation testing found unpinned: the kernel read from its file, each input
profile's warm starts checked under its own name, and the plane checks between the warm starts (what passes, and
what the refusals say)."""

from __future__ import annotations

import numpy as np
import pytest

from app.engine.checks import config_kernel, preflight
from app.engine.config import EngineConfig
from app.engine.network import ZSSRNet
from app.engine.warm_start import save_weights
from app.errors import ConfigError

TINY = EngineConfig(model_depth=2, model_width=8, device="cpu", warm_start=None, later_warm_start=None)


@pytest.fixture
def files(tmp_path) -> dict[str, str]:
    """Tiny weights files: RGB and grey at x2, RGB at x3."""
    made = {}
    for name, config, scale in (("rgb", TINY, 2.0), ("grey", TINY.replace(in_channels=1), 2.0),
                                ("rgb_x3", TINY, 3.0)):
        save_weights(ZSSRNet(config), config, tmp_path / f"{name}.pt", recipe={"scale_factor": scale})
        made[name] = str(tmp_path / f"{name}.pt")
    return made


def test_the_kernel_is_read_from_its_file(tmp_path):
    kernel = np.outer([1.0, 2.0, 1.0], [1.0, 3.0, 1.0])
    np.save(tmp_path / "k.npy", kernel)
    read = config_kernel(TINY.replace(kernel=str(tmp_path / "k.npy")))
    assert np.allclose(read, kernel)
    assert config_kernel(TINY) is None
    with pytest.raises(ConfigError) as caught:
        config_kernel(TINY.replace(kernel=str(tmp_path / "k.npy"), scale_factor=1.5))
    assert caught.value.key == "kernel" and caught.value.message == "a blur kernel needs an integer scale_factor"


def test_a_refused_weights_file_is_named_in_the_message(files):
    with pytest.raises(ConfigError, match="rgb.pt was trained for x2") as caught:
        preflight(TINY.replace(warm_start=files["rgb"], scale_factor=3.0))
    assert caught.value.key == "warm_start"


def test_a_profiles_own_warm_start_is_checked_under_the_profiles_name(files, tmp_path):
    config = TINY.replace(profiles={"lossless": {"warm_start": str(tmp_path / "none.pt")}})
    with pytest.raises(ConfigError) as caught:
        preflight(config)
    assert caught.value.key == "profiles.lossless.warm_start"
    assert "none.pt" in caught.value.message
    assert preflight(TINY.replace(profiles={"lossless": {"warm_start": files["rgb"]}})).startswith("cpu")


def test_a_profile_that_breaks_a_key_it_does_not_set_names_that_key(files):
    # The photo profile turns warm_start auto on; the photo weights it then reads (set in the base, unread there)
    # are x3 weights in an x2 config: the base's key is named, as the profile did not set it.
    config = TINY.replace(photo_warm_start=files["rgb_x3"], clean_warm_start=files["rgb"],
                          profiles={"photo": {"warm_start": "auto"}})
    with pytest.raises(ConfigError) as caught:
        preflight(config)
    assert caught.value.key == "photo_warm_start"
    assert preflight(config.replace(photo_warm_start=files["rgb"])).startswith("cpu")


def test_blurry_weights_that_see_the_photo_weights_planes_pass(files):
    auto = TINY.replace(warm_start="auto", photo_warm_start=files["rgb"], clean_warm_start=files["grey"],
                        blurry_warm_start=files["rgb"])
    assert preflight(auto).startswith("cpu")


def test_blurry_weights_that_see_other_planes_say_both_and_why(files):
    auto = TINY.replace(warm_start="auto", photo_warm_start=files["grey"], clean_warm_start=files["grey"],
                        blurry_warm_start=files["rgb"])
    with pytest.raises(ConfigError) as caught:
        preflight(auto)
    assert caught.value.key == "blurry_warm_start"
    assert caught.value.message == (f"{files['rgb']} sees 3 channels, photo_warm_start 1; a photo's planes are made "
                                    "before its blur is read")


def test_later_weights_must_see_what_every_first_step_network_sees(files):
    auto = TINY.replace(warm_start="auto", photo_warm_start=files["rgb"], clean_warm_start=files["grey"],
                        later_warm_start=files["rgb"])
    with pytest.raises(ConfigError) as caught:
        preflight(auto)
    assert caught.value.key == "later_warm_start"
    assert caught.value.message == (f"{files['rgb']} sees 3 channels, the first step's network 1 or 3; the steps "
                                    "share their planes")


def test_the_first_steps_planes_are_its_weights_not_the_configs(files):
    # Grey weights in a config that says 3 planes: the network is built as the file was trained, so grey later
    # weights fit it.
    config = TINY.replace(warm_start=files["grey"], later_warm_start=files["grey"])
    assert config.in_channels == 3 and preflight(config).startswith("cpu")
    with pytest.raises(ConfigError, match="the first step's network 3;"):
        preflight(TINY.replace(later_warm_start=files["grey"]))  # from scratch: the config's 3 planes
