"""Configuration: every kind of bad value is one ConfigError naming its key; files, overrides and replace."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
import typing

import pytest

from app.config import PATH_KEYS, DEFAULT_PATH, ServiceConfig, Settings, load_settings
from app.engine.config import EngineConfig, build
from app.errors import ConfigError


def assert_names(excinfo: pytest.ExceptionInfo, key: str) -> None:
    assert excinfo.value.key == key
    assert repr(key) in str(excinfo.value)


def test_defaults_are_the_authors():
    config = EngineConfig()
    assert (config.model_depth, config.model_width, config.model_kernel_size) == (8, 64, 3)
    assert (config.lr, config.lr_stop, config.lr_decay, config.lr_decay_ratio) == (1e-3, 9e-6, 0.1, 1.5)
    assert (config.num_epochs, config.crop_size, config.back_projection_iters) == (3000, 128, 10)
    assert config.self_ensemble is True
    assert config.total_scale == 2.0


def test_total_scale_is_scale_factor_to_the_power_of_scale_times():
    assert EngineConfig(scale_factor=2.0, scale_times=3).total_scale == 8.0
    assert EngineConfig(scale_factor=1.5, scale_times=2).total_scale == 2.25


def test_unknown_key_is_named():
    with pytest.raises(ConfigError) as excinfo:
        build(EngineConfig, {"model_depht": 4})
    assert_names(excinfo, "model_depht")


@pytest.mark.parametrize("key, value", [
    ("model_depth", True),          # bool is not an integer
    ("model_depth", "8"),           # string for a number
    ("model_depth", 2.5),           # non-integral float for an integer
    ("model_depth", None),          # not optional
    ("lr", "0.001"),
    ("lr", False),
    ("lr", [0.001]),
    ("lr", float("nan")),
    ("lr", float("inf")),
    ("scale_factor", True),
    ("self_ensemble", 1),           # int is not a bool
    ("self_ensemble", "true"),
    ("device", 0),
    ("kernel", 3),
    ("seed", "0"),
    ("time_budget_s", "45"),
])
def test_wrong_type_is_named(key, value):
    with pytest.raises(ConfigError) as excinfo:
        EngineConfig(**{key: value})
    assert_names(excinfo, key)


def test_integral_float_is_accepted_as_int():
    config = EngineConfig(model_depth=3.0)
    assert config.model_depth == 3 and type(config.model_depth) is int


def test_int_is_accepted_as_float():
    config = EngineConfig(lr=1)
    assert config.lr == 1.0 and type(config.lr) is float


@pytest.mark.parametrize("key, value", [
    ("model_depth", 1), ("model_depth", 65),
    ("model_width", 0), ("model_width", 1025),
    ("lr", 0.0), ("lr", -1e-3), ("lr", 1.5),
    ("lr_stop", -1e-9), ("lr_stop", 2.0),
    ("lr_decay", 0.0), ("lr_decay", 1.01),
    ("lr_decay_ratio", 0.0), ("lr_decay_ratio", 2e6),
    ("lr_decay_range", 1), ("lr_decay_range", 100001),
    ("lr_decay_step", 0), ("lr_decay_step", 100001),
    ("eval_every", 0),
    ("num_epochs", 0), ("num_epochs", 1000001),
    ("min_iters", -1),
    ("crop_size", 7), ("crop_size", 4097),
    ("batch_size", 0), ("batch_size", 257),
    ("patch_size", 31), ("patch_size", 16385),
    ("scale_factor", 1.0), ("scale_factor", 0.5), ("scale_factor", 8.5),
    ("scale_times", 0), ("scale_times", 7),
    ("back_projection_iters", -1), ("back_projection_iters", 101),
    ("noise_std", -0.01), ("noise_std", 0.6),
    ("seed", -1), ("seed", 2 ** 32),
    ("num_threads", -1),
    ("time_budget_s", 0.0), ("time_budget_s", -5.0), ("time_budget_s", 2e6),
])
def test_out_of_range_is_named(key, value):
    with pytest.raises(ConfigError) as excinfo:
        EngineConfig(**{key: value})
    assert_names(excinfo, key)


@pytest.mark.parametrize("cls", [EngineConfig, ServiceConfig])
def test_every_declared_range_is_enforced_on_both_sides(cls):
    """The validator itself: one step outside any declared bound is refused; a closed bound itself is accepted."""
    hints = typing.get_type_hints(cls)
    checked = 0
    for f in dataclasses.fields(cls):
        meta = f.metadata
        integral = int in typing.get_args(hints[f.name]) or hints[f.name] in (int, tuple[int, ...])
        as_value = (lambda v: [int(v)]) if isinstance(f.default, tuple) else (int if integral else float)
        for bound, direction, is_open in ((meta["lo"], -1, meta["lo_open"]), (meta["hi"], +1, False)):
            if bound is None:
                continue
            outside = bound + direction * (1 if integral else max(1e-3, abs(bound) * 1e-3))
            with pytest.raises(ConfigError) as excinfo:
                cls(**{f.name: as_value(outside)})
            assert excinfo.value.key == f.name
            if is_open:
                with pytest.raises(ConfigError):
                    cls(**{f.name: as_value(bound)})
            else:
                assert getattr(cls(**{f.name: as_value(bound)}), f.name) is not None
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("key, value", [
    ("in_channels", 2), ("in_channels", 4), ("model_kernel_size", 4), ("model_kernel_size", 11),
    ("model_fold", 0), ("model_fold", 5),
])
def test_bad_choice_is_named(key, value):
    with pytest.raises(ConfigError) as excinfo:
        EngineConfig(**{key: value})
    assert_names(excinfo, key)
    assert "one of" in str(excinfo.value)


@pytest.mark.parametrize("key, value", [("job_backend", "sqlite"), ("log_level", "debug"), ("log_level", "TRACE")])
def test_bad_service_choice_is_named(key, value):
    with pytest.raises(ConfigError) as excinfo:
        ServiceConfig(**{key: value})
    assert_names(excinfo, key)


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:3"])
def test_good_device_strings(device):
    assert EngineConfig(device=device).device == device


@pytest.mark.parametrize("device", ["gpu", "CPU", "", "mps", "cuda0", "cuda:", "cuda:x", "cuda:-1", "cuda:0:1"])
def test_bad_device_string_is_named(device):
    with pytest.raises(ConfigError) as excinfo:
        EngineConfig(device=device)
    assert_names(excinfo, "device")


def test_crop_size_must_be_at_least_twice_scale_factor():
    with pytest.raises(ConfigError) as excinfo:
        EngineConfig(crop_size=8, scale_factor=4.5)
    assert_names(excinfo, "crop_size")
    assert EngineConfig(crop_size=8, scale_factor=4.0).crop_size == 8


@pytest.mark.parametrize("value", ["48", [], [48, "x"], [4], [48, 5000], [True]])
def test_service_tuple_values_are_checked(value):
    with pytest.raises(ConfigError) as excinfo:
        ServiceConfig(crop_sizes=value)
    assert_names(excinfo, "crop_sizes")


def test_service_list_becomes_tuple():
    assert ServiceConfig(crop_sizes=[32, 64]).crop_sizes == (32, 64)


def test_optional_keys_accept_null():
    config = EngineConfig(seed=None, kernel=None, time_budget_s=None, warm_start=None)
    assert config.seed is None and config.time_budget_s is None


def test_replace_makes_a_new_validated_config():
    config = EngineConfig()
    changed = config.replace(model_depth=4, lr=0.01)
    assert (changed.model_depth, changed.lr) == (4, 0.01)
    assert config.model_depth == 8  # the original is untouched
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed.model_depth = 5
    with pytest.raises(ConfigError) as excinfo:
        config.replace(model_depth=0)
    assert_names(excinfo, "model_depth")
    with pytest.raises(ConfigError) as excinfo:
        config.replace(depth=4)
    assert_names(excinfo, "depth")


def write_json(path, values) -> str:
    path.write_text(json.dumps(values), encoding="utf-8")
    return str(path)


def test_load_settings_from_a_file(tmp_path):
    path = write_json(tmp_path / "c.json", {"model_depth": 4, "scale_times": 2, "queue_size": 3,
                                             "crop_sizes": [32, 48], "_comment": "ignored"})
    settings = load_settings(path)
    assert isinstance(settings, Settings)
    assert settings.engine.model_depth == 4 and settings.engine.scale_times == 2
    assert settings.service.queue_size == 3 and settings.service.crop_sizes == (32, 48)
    assert settings.engine.model_width == EngineConfig().model_width  # keys left out keep their defaults


def test_load_settings_overrides_win_and_are_validated(tmp_path):
    path = write_json(tmp_path / "c.json", {"model_depth": 4, "max_MB": 5})
    settings = load_settings(path, {"model_depth": 6, "max_MB": 2.5, "image": "x.png"})
    assert settings.engine.model_depth == 6
    assert settings.service.max_MB == 2.5 and settings.service.image == "x.png"
    with pytest.raises(ConfigError) as excinfo:
        load_settings(path, {"lr": "fast"})
    assert_names(excinfo, "lr")
    with pytest.raises(ConfigError) as excinfo:
        load_settings(path, {"no_such_key": 1})
    assert_names(excinfo, "no_such_key")


@pytest.mark.parametrize("values, key", [
    ({"modle_width": 8}, "modle_width"),
    ({"model_width": "8"}, "model_width"),
    ({"max_MB": 0}, "max_MB"),
    ({"queue_size": True}, "queue_size"),
    ({"scale_factor": 2, "crop_size": 3}, "crop_size"),
])
def test_load_settings_names_the_bad_key_in_a_file(tmp_path, values, key):
    path = write_json(tmp_path / "c.json", values)
    with pytest.raises(ConfigError) as excinfo:
        load_settings(path)
    assert_names(excinfo, key)


@pytest.mark.parametrize("text", ["{not json", "", '{"lr": 0.001,}'])
def test_invalid_json(tmp_path, text):
    path = tmp_path / "c.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as excinfo:
        load_settings(path)
    assert excinfo.value.key == "config"
    assert "JSON" in str(excinfo.value)


def test_json_that_is_not_an_object(tmp_path):
    with pytest.raises(ConfigError) as excinfo:
        load_settings(write_json(tmp_path / "c.json", [1, 2]))
    assert excinfo.value.key == "config"


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError) as excinfo:
        load_settings(tmp_path / "absent.json")
    assert excinfo.value.key == "config"
    assert "absent.json" in str(excinfo.value)


def test_settings_replace_routes_keys_to_their_part():
    settings = load_settings(DEFAULT_PATH)
    changed = settings.replace(model_width=16, queue_size=2)
    assert changed.engine.model_width == 16 and changed.service.queue_size == 2
    assert settings.engine.model_width == 64
    with pytest.raises(ConfigError) as excinfo:
        settings.replace(bogus=1)
    assert_names(excinfo, "bogus")


def test_repository_config_json_loads_and_names_every_key():
    settings = load_settings()
    on_disk = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    flat = {**dataclasses.asdict(settings.engine), **dataclasses.asdict(settings.service)}
    on_disk.pop("_comment", None)
    def resolved(values: dict) -> dict:
        out = {}
        for key, value in values.items():
            expected = tuple(value) if isinstance(value, list) else value
            if key in PATH_KEYS and value is not None and value != "auto":
                # Paths in the file are relative to the file, so that it works from any working directory.
                expected = str(DEFAULT_PATH.parent / value)
                assert Path(expected).exists(), key
            out[key] = expected
        return out

    for key, expected in resolved(on_disk).items():
        if key == "profiles":
            expected = {name: resolved(keys) for name, keys in expected.items()}
        assert flat[key] == expected, key
    # Every key of the original reproduction is present in the shipped file.
    for key in ("max_MB", "base64", "image", "output", "in_channels", "model_width", "model_depth",
                "model_kernel_size", "lr", "lr_stop", "lr_decay", "lr_decay_ratio", "lr_decay_range",
                "lr_decay_step", "num_epochs", "crop_size", "patch_size", "scale_factor", "scale_times"):
        assert key in on_disk, key


def test_config_error_is_a_value_error_with_the_key():
    error = ConfigError("lr", "bad")
    assert isinstance(error, ValueError)
    assert error.key == "lr" and "'lr'" in str(error)


def test_readme_documents_every_config_key():
    readme = (DEFAULT_PATH.parent / "README.md").read_text(encoding="utf-8")
    for cls in (EngineConfig, ServiceConfig):
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in readme, f.name


# Every numeric key's declared range (lo, hi, lo exclusive), pinned: a range removed or widened by accident
# (workers_per_device accepting 0, say) fails here, and each bound is tried below on the real dataclass.
RANGES = {
    EngineConfig: {
        "model_width": (1, 1024, False), "model_depth": (2, 64, False), "lr": (0.0, 1.0, True),
        "lr_stop": (0.0, 1.0, False), "lr_decay": (0.0, 1.0, True), "lr_decay_ratio": (0.0, 1e6, True),
        "lr_decay_range": (2, 100000, False), "lr_decay_step": (1, 100000, False), "eval_every": (1, 100000, False),
        "num_epochs": (1, 1000000, False), "min_iters": (0, 1000000, False), "crop_size": (8, 4096, False),
        "batch_size": (1, 256, False), "init_variance": (0.0, 10.0, True), "patch_size": (32, 16384, False),
        "scale_factor": (1.0, 8.0, True),
        "scale_times": (1, 6, False), "back_projection_iters": (0, 100, False), "noise_std": (0.0, 0.5, False),
        "seed": (0, 2**32 - 1, False), "num_threads": (0, 1024, False), "time_budget_s": (0.0, 1e6, True),
        "first_step_share": (0.0, 1.0, True), "blurry_photo_std": (0.0, 10.0, True),
        "learning_share": (0.0, 1.0, True), "ensemble_steps": (1, 64, False),
        "iteration_budget": (0, 10_000_000, False),
    },
    ServiceConfig: {
        "max_MB": (0.0, 1024.0, True), "max_pixels": (1, 10**9, False), "min_side": (4, 4096, False),
        "crop_sizes": (8, 4096, False), "default_crop": (8, 4096, False), "train_max_side": (16, 16384, False),
        "wait_s": (0.0, 3600.0, False), "queue_size": (1, 100000, False), "workers_per_device": (1, 64, False),
        "result_ttl_s": (1.0, 1e7, False), "max_results": (1, 100000, False), "results_max_MB": (0.0, 1e6, True),
        "job_time_budget_s": (0.0, 1e5, True), "job_timeout_s": (1.0, 1e6, False), "job_retries": (0, 10, False),
        "worker_lost_after_s": (2.0, 3600.0, False), "max_jobs_per_client": (0, 100000, False),
        "max_output_pixels": (1, 10**9, False), "context_px": (0, 256, False),
    },
}
CHOICES = {
    EngineConfig: {"in_channels": (1, 3), "model_kernel_size": (1, 3, 5, 7, 9), "model_fold": (1, 2, 3, 4),
                   "kernel_alignment": ("direct", "centred"), "estimated_kernel_alignment": ("direct", "centred"),
                   "father_augment": ("dihedral", "warp"), "father_sampling": ("area", "source"),
                   "profile": ("auto", "photo", "blurry_photo", "lossless", "kernel_given", "kernel_estimated")},
    ServiceConfig: {"job_backend": ("memory", "redis"), "log_level": ("DEBUG", "INFO", "WARNING", "ERROR")},
}


def _item_type(annotation):
    """int for `int`, `int | None` and `tuple[int, ...]`; likewise float, str, bool."""
    if typing.get_origin(annotation) is tuple:
        return typing.get_args(annotation)[0]
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if args else annotation


@pytest.mark.parametrize("cls", [EngineConfig, ServiceConfig], ids=lambda c: c.__name__)
def test_every_numeric_key_declares_the_pinned_range(cls):
    hints = typing.get_type_hints(cls)
    numeric = {f.name for f in dataclasses.fields(cls) if _item_type(hints[f.name]) in (int, float)}
    assert numeric - set(CHOICES[cls]) == set(RANGES[cls])
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if f.name in RANGES[cls]:
            assert (meta["lo"], meta["hi"], meta["lo_open"]) == RANGES[cls][f.name], f.name
        if f.name in CHOICES[cls]:
            assert meta["choices"] == CHOICES[cls][f.name], f.name


def _cases():
    for cls, ranges in RANGES.items():
        for key, (lo, hi, lo_open) in ranges.items():
            yield pytest.param(cls, key, lo, hi, lo_open, id=f"{cls.__name__}.{key}")


@pytest.mark.parametrize("cls, key, lo, hi, lo_open", list(_cases()))
def test_each_bound_is_enforced(cls, key, lo, hi, lo_open):
    is_list = key == "crop_sizes"
    step = 1 if isinstance(lo, int) and not isinstance(lo, bool) else max(abs(lo), 1.0) * 1e-6

    def make(value):
        return cls(**{key: [value] if is_list else value})

    def refused(value):
        with pytest.raises(ConfigError) as excinfo:
            make(value)
        assert excinfo.value.key == key

    refused(lo if lo_open else lo - step)
    if lo_open:
        make(lo + step)
    elif not (cls is EngineConfig and key == "crop_size"):  # crop_size also needs 2 x scale_factor (checked below)
        make(lo)
    make(hi)
    refused(hi + step)
