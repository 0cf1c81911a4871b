"""Fail at start: relative paths in a config file, and the checks a service or worker runs before any job."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from app.config import REPOSITORY_ROOT, check_paths, load_settings
from app.engine.config import EngineConfig
from app.engine.network import ZSSRNet
from app.engine.checks import preflight
from app.engine.warm_start import save_weights
from app.errors import ConfigError

SHIPPED = "app/engine/weights/zssr_x2.pt"


def write_config(folder, **values):
    path = folder / "config.json"
    path.write_text(json.dumps(values))
    return path


def test_a_shipped_relative_path_works_from_a_config_file_kept_anywhere(tmp_path):
    settings = load_settings(write_config(tmp_path, warm_start=SHIPPED))
    assert settings.engine.warm_start == str(REPOSITORY_ROOT / SHIPPED)


def test_a_file_beside_the_config_file_wins_over_the_repository(tmp_path):
    (tmp_path / "app/engine/weights").mkdir(parents=True)
    (tmp_path / SHIPPED).write_bytes(b"mine")
    (tmp_path / "k.npy").write_bytes(b"")
    settings = load_settings(write_config(tmp_path, warm_start=SHIPPED, kernel="k.npy"))
    assert settings.engine.warm_start == str(tmp_path / SHIPPED)
    assert settings.engine.kernel == str(tmp_path / "k.npy")


def test_a_missing_relative_path_is_named_beside_the_config_file(tmp_path):
    settings = load_settings(write_config(tmp_path, kernel="nowhere.npy"))
    assert settings.engine.kernel == str(tmp_path / "nowhere.npy")
    with pytest.raises(ConfigError, match="nowhere.npy") as excinfo:
        check_paths(settings.engine)
    assert excinfo.value.key == "kernel"


def test_overrides_stay_relative_to_the_working_directory(tmp_path):
    settings = load_settings(write_config(tmp_path), {"warm_start": "w.pt"})
    assert settings.engine.warm_start == "w.pt"


def test_absolute_paths_are_kept(tmp_path):
    settings = load_settings(write_config(tmp_path, warm_start=str(REPOSITORY_ROOT / SHIPPED)))
    assert settings.engine.warm_start == str(REPOSITORY_ROOT / SHIPPED)


def test_check_paths_accepts_readable_files_and_nulls(tmp_path):
    check_paths(EngineConfig(warm_start=str(REPOSITORY_ROOT / SHIPPED), kernel=None))


def test_preflight_passes_a_runnable_config_and_names_the_device():
    assert preflight(EngineConfig(device="cpu", warm_start=str(REPOSITORY_ROOT / SHIPPED))).startswith("cpu")


def bad_configs(tmp_path) -> dict[str, tuple[str, EngineConfig]]:
    tiny = EngineConfig(model_depth=2, model_width=8, device="cpu")
    weights = tmp_path / "w.pt"
    save_weights(ZSSRNet(tiny), tiny, weights, recipe={"scale_factor": 2.0})
    rgb = tmp_path / "rgb.pt"
    save_weights(ZSSRNet(tiny), tiny, rgb, recipe={"scale_factor": 2.0})
    # A file whose recorded design (width 16) is not its weights' (width 8): no network fits both.
    mislabelled = tmp_path / "mislabelled.pt"
    torch.save({**torch.load(weights), "arch": {**torch.load(weights)["arch"], "model_width": 16}}, mislabelled)
    grey = tmp_path / "grey.pt"
    save_weights(ZSSRNet(tiny.replace(in_channels=1)), tiny.replace(in_channels=1), grey, recipe={"scale_factor": 2.0})
    auto = tiny.replace(warm_start="auto", photo_warm_start=str(weights), clean_warm_start=str(weights))
    (tmp_path / "junk.pt").write_bytes(b"junk" * 10)
    np.save(tmp_path / "k.npy", np.ones((5, 5)))
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    return {
        "missing weights": ("warm_start", tiny.replace(warm_start=str(tmp_path / "none.pt"))),
        "unreadable weights": ("warm_start", tiny.replace(warm_start=str(tmp_path / "junk.pt"))),
        "weights unlike their record": ("warm_start", tiny.replace(warm_start=str(mislabelled))),
        "another scale": ("warm_start", tiny.replace(warm_start=str(weights), scale_factor=3.0)),
        "missing later weights": ("later_warm_start", tiny.replace(later_warm_start=str(tmp_path / "none.pt"))),
        "later weights unlike their record": ("later_warm_start", tiny.replace(later_warm_start=str(mislabelled))),
        "later weights that see other planes": ("later_warm_start",
                                                tiny.replace(later_warm_start=str(rgb), in_channels=1)),
        "missing blurry weights": ("blurry_warm_start", auto.replace(blurry_warm_start=str(tmp_path / "none.pt"))),
        "blurry weights that see other planes": ("blurry_warm_start",
                                                 auto.replace(photo_warm_start=str(grey), blurry_warm_start=str(rgb))),
        "missing kernel": ("kernel", tiny.replace(kernel=str(tmp_path / "none.npy"))),
        "unreadable kernel": ("kernel", tiny.replace(kernel=str(tmp_path / "bad.npy"))),
        "kernel at x1.5": ("kernel", tiny.replace(kernel=str(tmp_path / "k.npy"), scale_factor=1.5)),
        "no such device": ("device", tiny.replace(device="cuda:99")),
    }


CASES = ["missing weights", "unreadable weights", "weights unlike their record", "another scale",
         "missing later weights", "later weights unlike their record", "later weights that see other planes",
         "missing blurry weights", "blurry weights that see other planes", "missing kernel",
         "unreadable kernel", "kernel at x1.5", "no such device"]


@pytest.mark.parametrize("case", CASES)
def test_preflight_names_the_key_of_a_config_no_job_could_run_with(tmp_path, case):
    key, config = bad_configs(tmp_path)[case]
    with pytest.raises(ConfigError) as excinfo:
        preflight(config)
    assert excinfo.value.key == key
