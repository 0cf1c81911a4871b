"""The service config and the file reader at the edges mutation testing found loose: each service check's key and
message, what each accepts, relative paths in a config file, and the engine's files checked by key."""

from __future__ import annotations

import dataclasses
import json

import pytest

from app.config import (REPOSITORY_ROOT, ServiceConfig, check_paths, load_settings, parse_value, resolve_path,
                        split)
from app.engine.config import EngineConfig
from app.errors import ConfigError

DIGEST = "0123456789abcdef" * 4


def config_error(**values) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        ServiceConfig(**values)
    return caught.value


@pytest.mark.parametrize("values, key, message", [
    ({"redis_queue": "a:b"}, "redis_queue", "use 1 to 64 letters, digits, '_', '-' or '.'; got 'a:b'"),
    ({"rate_limit": "often"}, "rate_limit", "not a rate like 10/minute: 'often'"),
    ({"trusted_proxies": ("10.0.0.1", "proxy.local")}, "trusted_proxies", "not an address or network: 'proxy.local'"),
    ({"api_keys": (DIGEST, "my-secret")}, "api_keys",
     "give each key's SHA-256 as 64 hex digits (python -m app.web.keys), never the key itself"),
])
def test_each_service_check_names_its_key_and_says_why(values, key, message):
    error = config_error(**values)
    assert error.key == key and str(error) == f"config key {key!r}: {message}"


def test_what_the_service_checks_accept():
    service = ServiceConfig(rate_limit=None, trusted_proxies=("10.1.2.3/8", "::1", "192.168.0.0/16"),
                            api_keys=(DIGEST,), redis_queue="photos.eu-1_b")
    assert service.rate_limit is None and service.api_keys == (DIGEST,)
    assert ServiceConfig(rate_limit="10/minute;100/hour").rate_limit == "10/minute;100/hour"


def test_service_replace_makes_a_new_checked_config():
    service = ServiceConfig()
    changed = service.replace(max_MB=2.5, redis_queue="other")
    assert (changed.max_MB, changed.redis_queue) == (2.5, "other") and service.max_MB == 10.0
    assert dataclasses.replace(changed, max_MB=10.0, redis_queue="zssr") == service
    with pytest.raises(ConfigError, match="redis_queue"):
        service.replace(redis_queue="a b")


def test_an_unknown_key_says_so():
    with pytest.raises(ConfigError) as caught:
        split({"max_MB": 1.0, "colour": "blue"})
    assert str(caught.value) == "config key 'colour': unknown key"


@pytest.mark.parametrize("text, value", [("3", 3), ("2.5", 2.5), ("true", True), ("null", None), ("[1, 2]", [1, 2]),
                                         ("cpu", "cpu"), ("x2.png", "x2.png")])
def test_command_line_values_are_json_where_they_parse(text, value):
    assert parse_value(text) == value


def test_config_file_errors_say_what_and_where(tmp_path):
    missing = tmp_path / "absent.json"
    with pytest.raises(ConfigError) as caught:
        load_settings(missing)
    assert str(caught.value) == f"config key 'config': cannot read {missing}: No such file or directory"
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(ConfigError) as caught:
        load_settings(listed)
    assert str(caught.value) == f"config key 'config': {listed} must hold a JSON object"


def test_a_config_file_is_read_as_utf8(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(json.dumps({"_comment": "réglages de Zoë", "max_MB": 3.0}, ensure_ascii=False).encode("utf-8"))
    assert load_settings(path).service.max_MB == 3.0


def test_relative_paths_in_a_config_file(tmp_path):
    shipped = "app/engine/weights/zssr_x2.pt"
    assert (REPOSITORY_ROOT / shipped).exists()
    config = tmp_path / "conf" / "config.json"
    config.parent.mkdir()
    # Not beside the config file but shipped: the repository's copy.
    assert resolve_path(shipped, config) == str(REPOSITORY_ROOT / shipped)
    # Beside the config file: that one, shipped or not.
    (config.parent / "app/engine/weights").mkdir(parents=True)
    (config.parent / shipped).write_bytes(b"mine")
    assert resolve_path(shipped, config) == str(config.parent / shipped)
    # Neither: beside the config file, where the error will name it.
    assert resolve_path("kernels/k.mat", config) == str(config.parent / "kernels/k.mat")
    assert resolve_path(str(tmp_path / "abs.pt"), config) == str(tmp_path / "abs.pt")


def test_warm_start_auto_is_a_word_not_a_path(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"warm_start": "w.pt"}))
    assert load_settings(path).engine.warm_start == str(tmp_path / "w.pt")
    shipped = "app/engine/weights/zssr_x2.pt"
    path.write_text(json.dumps({"warm_start": "auto", "photo_warm_start": shipped, "clean_warm_start": shipped}))
    engine = load_settings(path).engine
    assert engine.warm_start == "auto" and engine.photo_warm_start == str(REPOSITORY_ROOT / shipped)
    check_paths(engine)


def test_check_paths_names_each_unreadable_file_by_its_key(tmp_path):
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"\xff\xfe\x80 not text")  # binary: it must be opened as bytes
    check_paths(EngineConfig(warm_start=str(weights)))
    check_paths(EngineConfig(warm_start=None, kernel=None))
    missing = tmp_path / "later.pt"
    with pytest.raises(ConfigError) as caught:
        check_paths(EngineConfig(warm_start=None, later_warm_start=str(missing)))
    assert str(caught.value) == f"config key 'later_warm_start': cannot read {missing}: No such file or directory"


def test_a_missing_warm_start_file_is_named(tmp_path):
    missing = tmp_path / "absent.pt"
    with pytest.raises(ConfigError) as caught:
        check_paths(EngineConfig(warm_start=str(missing)))
    assert caught.value.key == "warm_start"
