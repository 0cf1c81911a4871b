"""Input profiles: each kind of input runs with its own settings, chosen by the input, forced by `profile`, and
keys the caller pins win over every profile."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from app.config import check_paths, load_settings
from app.engine import super_resolve
from app.engine.checks import preflight
from app.engine.config import EngineConfig
from app.engine.jpeg import JpegProfile
from app.engine.network import ZSSRNet
from app.engine.profiles import NO_PROFILE, ProfileChoice, choose_profile
from app.engine.warm_start import save_weights
from app.errors import ConfigError
from tests.conftest import pattern

# Each profile keeps a different share of its learning, so a result shows which one ran.
SHARES = {"photo": 0.3, "blurry_photo": 0.4, "lossless": 0.5, "kernel_given": 0.6, "kernel_estimated": 0.8}


def with_profiles(config: EngineConfig, **changes) -> EngineConfig:
    return config.replace(profiles={name: {"learning_share": share} for name, share in SHARES.items()}, **changes)


def never(_config) -> bool:
    raise AssertionError("the blur was read for an input that cannot be a blurry photo")


@pytest.mark.parametrize("jpeg, blurry, changes, expected", [
    (False, never, {}, ("lossless", "a lossless input")),
    (True, lambda c: False, {}, ("photo", "a JPEG input")),
    (True, lambda c: True, {}, ("blurry_photo", "a blurry JPEG input")),
    (True, never, {"kernel": "k.npy"}, ("kernel_given", "a blur kernel is given")),
    (False, never, {"kernel": "k.npy"}, ("kernel_given", "a blur kernel is given")),
    (True, never, {"estimate_kernel": True}, ("kernel_estimated", "the blur kernel is estimated from the input")),
    (False, never, {"estimate_kernel": True}, ("kernel_estimated", "the blur kernel is estimated from the input")),
    (True, never, {"profile": "lossless"}, ("lossless", "the config")),
    (False, never, {"profile": "photo"}, ("photo", "the config")),
])
def test_the_input_chooses_its_profile(jpeg, blurry, changes, expected):
    config = with_profiles(EngineConfig(), **changes)  # a kernel file is not read to choose: any path will do
    choice = choose_profile(config, jpeg, blurry)
    assert (choice.name, choice.reason) == expected


def test_the_blur_reader_sees_the_photo_profiles_settings():
    seen = []
    config = EngineConfig(profiles={"photo": {"blurry_photo_std": 1.3}, "blurry_photo": {}})
    choose_profile(config, True, lambda photo: seen.append(photo.blurry_photo_std) or False)
    assert seen == [1.3]


def test_without_a_blurry_photo_profile_the_blur_is_not_read():
    config = EngineConfig(profiles={"photo": {"blurry_photo_std": 1.3}})
    assert choose_profile(config, True, never).name == "photo"


def test_no_profiles_is_the_config_as_it_is():
    assert choose_profile(EngineConfig(), True, never) == NO_PROFILE


def test_a_kind_without_its_profile_runs_as_lossless():
    config = EngineConfig(profiles={"lossless": {"learning_share": 0.5}})
    choice = choose_profile(config, True, never)
    assert choice.name == "lossless" and "no photo profile" in choice.reason


def test_a_kind_with_neither_its_profile_nor_lossless_runs_with_the_configs_own_keys(tiny_config):
    config = tiny_config.replace(learning_share=0.9, profiles={"photo": {"learning_share": 0.3}})
    choice = choose_profile(config, False, never)
    assert choice == ProfileChoice(None, "a lossless input, with no lossless profile")
    result = super_resolve(Image.fromarray(pattern(24, 24)), config)
    assert result.profile == {"name": None, "chosen_by": "a lossless input, with no lossless profile"}
    assert result.learning_share == 0.9


@pytest.mark.parametrize("profiles, key", [
    ({"photos": {}}, "profiles"),
    ({"photo": {"seed": 3}}, "profiles.photo.seed"),
    ({"photo": {"scale_factor": 4.0}}, "profiles.photo.scale_factor"),
    ({"photo": {"kernel": "k.npy"}}, "profiles.photo.kernel"),
    ({"photo": {"learning_rate": 0.1}}, "profiles.photo.learning_rate"),
    ({"lossless": {"learning_share": 0.0}}, "profiles.lossless.learning_share"),
    ({"lossless": {"num_epochs": "many"}}, "profiles.lossless.num_epochs"),
])
def test_a_bad_profile_is_an_error_naming_it(profiles, key):
    with pytest.raises(ConfigError) as error:
        EngineConfig(profiles=profiles)
    assert error.value.key == key


def test_a_forced_profile_must_exist():
    with pytest.raises(ConfigError, match="'profile'"):
        EngineConfig(profile="photo", profiles={"lossless": {}})


def test_pinned_keys_win_over_every_profile():
    config = with_profiles(EngineConfig()).pinned(learning_share=1.0, lr=5e-4)
    for name in SHARES:
        applied = config.with_profile(name)
        assert (applied.learning_share, applied.lr) == (1.0, 5e-4), name
    # What is not pinned stays each profile's own.
    unpinned = with_profiles(EngineConfig()).pinned(lr=5e-4)
    assert {n: unpinned.with_profile(n).learning_share for n in SHARES} == SHARES


def test_command_line_keys_win_over_profiles_and_the_rest_stay(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"learning_share": 1.0, "lr": 1e-3,
                                "profiles": {"photo": {"learning_share": 0.3, "lr": 2e-4}}}))
    loaded = load_settings(path, {"lr": 7e-4}).engine.with_profile("photo")
    assert (loaded.learning_share, loaded.lr) == (0.3, 7e-4)
    changed = load_settings(path).replace(learning_share=0.9).engine.with_profile("photo")
    assert (changed.learning_share, changed.lr) == (0.9, 2e-4)


def test_a_profiles_weights_path_is_resolved_beside_the_config_and_checked(tmp_path, tiny_config):
    net = ZSSRNet(tiny_config)
    save_weights(net, tiny_config, tmp_path / "photo.pt", recipe={"scale_factor": 2.0})
    path = tmp_path / "config.json"
    tiny = {k: getattr(tiny_config, k) for k in ("model_depth", "model_width", "device")}
    path.write_text(json.dumps({**tiny, "profiles": {"photo": {"warm_start": "photo.pt"}}}))
    engine = load_settings(path).engine
    assert engine.with_profile("photo").warm_start == str(tmp_path / "photo.pt")
    check_paths(engine)
    preflight(engine)
    path.write_text(json.dumps({**tiny, "profiles": {"photo": {"warm_start": "missing.pt"}}}))
    with pytest.raises(ConfigError) as error:
        check_paths(load_settings(path).engine)
    assert error.value.key == "profiles.photo.warm_start"
    wide = tiny_config.replace(model_width=12)
    save_weights(ZSSRNet(wide), wide, tmp_path / "wide.pt", recipe={"scale_factor": 4.0})
    path.write_text(json.dumps({**tiny, "profiles": {"lossless": {"warm_start": "wide.pt"}}}))
    with pytest.raises(ConfigError) as error:
        preflight(load_settings(path).engine)
    assert error.value.key == "profiles.lossless.warm_start"


def jpeg_of(image: Image.Image) -> tuple[Image.Image, JpegProfile]:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    data = buffer.getvalue()
    return Image.open(io.BytesIO(data)).convert("RGB"), JpegProfile.read(data)


def test_a_run_applies_the_profile_its_input_chooses_and_says_so(tiny_config):
    image = Image.fromarray(pattern(40, 44))
    config = with_profiles(tiny_config)
    lossless = super_resolve(image, config)
    assert lossless.profile == {"name": "lossless", "chosen_by": "a lossless input"}
    assert lossless.learning_share == SHARES["lossless"]
    photo, profile = jpeg_of(image)
    jpeg = super_resolve(photo, config, jpeg=profile)
    assert jpeg.profile == {"name": "photo", "chosen_by": "a JPEG input"} and jpeg.learning_share == 0.3
    forced = super_resolve(photo, config.replace(profile="lossless"), jpeg=profile)
    assert forced.profile == {"name": "lossless", "chosen_by": "the config"} and forced.learning_share == 0.5
    # The share is applied, not only reported: the same input under another share is another image.
    assert not np.array_equal(np.asarray(jpeg.image), np.asarray(forced.image))


def test_a_photo_read_blurry_runs_the_blurry_profile_and_learns_nothing(tiny_config):
    photo, profile = jpeg_of(Image.fromarray(pattern(64, 64)))
    profiles = {"photo": {"blurry_photo_std": 0.01}, "blurry_photo": {"test_time_learning": False}}
    result = super_resolve(photo, tiny_config.replace(profiles=profiles, scale_times=2), jpeg=profile)
    assert result.profile == {"name": "blurry_photo", "chosen_by": "a blurry JPEG input"}
    assert result.iterations_per_step == (0, 0) and result.self_check is None
    # The reading made under the photo profile is what the result reports.
    assert result.degradation["blurry"] is True and result.degradation["blur_std"] is not None
    sharp = super_resolve(photo, tiny_config.replace(profiles={**profiles, "photo": {"blurry_photo_std": 9.0}},
                                                    scale_times=2), jpeg=profile)
    assert sharp.profile["name"] == "photo" and sharp.iterations > 0 and not sharp.degradation["blurry"]


def test_a_profiles_warm_start_is_the_one_loaded(tiny_config, tmp_path):
    torch.manual_seed(5)
    net = ZSSRNet(tiny_config)
    torch.nn.init.normal_(net.layers[-1].weight, 0.0, 0.05)
    save_weights(net, tiny_config, tmp_path / "photo.pt", recipe={"scale_factor": 2.0})
    photo, profile = jpeg_of(Image.fromarray(pattern(40, 44)))
    config = tiny_config.replace(num_epochs=1, profiles={"photo": {"warm_start": str(tmp_path / "photo.pt"),
                                                                   "test_time_learning": False}})
    result = super_resolve(photo, config, jpeg=profile)
    assert result.warm_start == {"weights": "photo.pt", "chosen_by": "a JPEG input"}
    scratch = super_resolve(photo, config.replace(profile="lossless", profiles={**config.profiles,
                                                                                 "lossless": {}}), jpeg=profile)
    assert scratch.warm_start["weights"] is None


@pytest.mark.parametrize("budget, first_share, expected", [
    (20, 0.85, (17, 2, 1)),  # 85 % first, then the rest evenly
    (20, None, (7, 6, 7)),  # evenly over what is left
    (0, 0.85, (0, 0, 0)),  # nothing: the warm start alone
])
def test_the_iteration_budget_splits_over_the_steps_as_time_does(tiny_config, budget, first_share, expected):
    config = tiny_config.replace(num_epochs=1000, min_iters=1000, scale_times=3, iteration_budget=budget,
                                 first_step_share=first_share)
    result = super_resolve(Image.fromarray(pattern(24, 24)), config)
    assert result.iterations_per_step == expected
    assert result.budget_exhausted == (budget < 3000)


def test_an_iteration_budget_gives_the_same_image_twice(tiny_config):
    config = tiny_config.replace(num_epochs=1000, min_iters=1000, scale_times=2, iteration_budget=12)
    image = Image.fromarray(pattern(24, 24))
    first, second = super_resolve(image, config), super_resolve(image, config)
    assert np.array_equal(np.asarray(first.image), np.asarray(second.image))
