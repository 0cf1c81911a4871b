"""Reads config.json (the one place it is read) into the engine's and the service's frozen dataclasses."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from app.engine.config import AUTO, ENGINE_KEYS, EngineConfig, build, option, validate
from app.errors import ConfigError

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = REPOSITORY_ROOT / "config.json"
_QUEUE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ServiceConfig:
    """Keys of the CLI, the web service and the job runner (everything that is not the engine's)."""

    image: str | None = option(None, "CLI: input image path")
    output: str | None = option(None, "CLI: output image path (PNG recommended)")
    base64: bool = option(True, "return the result as base64 (web JSON; the CLI prints it when no output path)")
    max_MB: float = option(10.0, "largest accepted upload, in megabytes", lo=0.0, hi=1024.0, lo_open=True)
    max_pixels: int = option(40_000_000, "largest accepted upload, in pixels (decompression-bomb guard)",
                             lo=1, hi=1_000_000_000)
    min_side: int = option(16, "an upload (or its crop) smaller than this on a side is refused", lo=4, hi=4096)
    crop_sizes: tuple[int, ...] = option((48, 64, 96, 128), "crop sizes offered on the page", lo=8, hi=4096)
    default_crop: int = option(64, "crop size used when the client names none", lo=8, hi=4096)
    max_output_pixels: int = option(16_000_000, "largest enlargement a job or the CLI may make, in pixels (a whole "
                                                "photo at 8x grows 64 times); larger requests get 400 naming the "
                                                "largest scale that fits, the CLI refuses before any work "
                                                "(--allow-large lifts it)", lo=1, hi=1_000_000_000)
    train_max_side: int = option(512, "the whole photo is downscaled to at most this side for training",
                                 lo=16, hi=16384)
    context_px: int = option(0, "photo pixels around the crop (where the photo has them) that a job enlarges with "
                                "it and then cuts away: the network sees across the crop's edges, so they come "
                                "out as well as its middle; 0: the crop alone", lo=0, hi=256)
    wait_s: float = option(120.0, "POST /upscale waits this long for the result before answering 202",
                           lo=0.0, hi=3600.0)
    queue_size: int = option(8, "jobs waiting or running at once; beyond it the API answers 503", lo=1, hi=100000)
    workers_per_device: int = option(1, "jobs run at once per device", lo=1, hi=64)
    result_ttl_s: float = option(600.0, "finished jobs are kept this long", lo=1.0, hi=1e7)
    max_results: int = option(64, "finished jobs kept at most (oldest dropped first)", lo=1, hi=100000)
    results_max_MB: float = option(256.0, "memory for finished jobs' images at most (oldest dropped first)",
                                   lo=0.0, hi=1e6, lo_open=True)
    job_time_budget_s: float = option(45.0, "training time of one web job, all gradual steps together; the "
                                      "result comes back when it is spent (the web's time_budget_s)",
                                      lo=0.0, hi=1e5, lo_open=True)
    job_backend: str = option("memory", "memory (in-process runner) or redis (RQ workers)",
                              choices=("memory", "redis"))
    redis_url: str = option("redis://127.0.0.1:6379/0", "Redis URL for job_backend redis")
    job_timeout_s: float = option(900.0, "a job running longer than this is failed (redis backend)",
                                  lo=1.0, hi=1e6)
    job_retries: int = option(0, "retries of a job whose worker died (redis backend)", lo=0, hi=10)
    redis_queue: str = option("zssr", "redis backend: the RQ queue's name, also the prefix of the service's own "
                              "Redis keys; services that share one Redis use different names")
    worker_lost_after_s: float = option(30.0, "redis backend: a worker that has not reported for this long is "
                                        "taken for dead and its job failed (or retried per job_retries); "
                                        "workers report every second", lo=2.0, hi=3600.0)
    rate_limit: str | None = option("10/minute", "job submissions (POST /upscale, POST /api/jobs) one client may "
                                    "make, in Flask-Limiter's notation (10/minute, 100/hour; several joined by "
                                    "';'); beyond it 429 with Retry-After; null: no limit")
    max_jobs_per_client: int = option(2, "jobs one client may have queued or running at once; beyond it 429 with "
                                      "Retry-After; 0: no cap", lo=0, hi=100000)
    trusted_proxies: tuple[str, ...] | None = option(None, "addresses or networks (CIDR) of the reverse proxies in "
                                                     "front; only from them is X-Forwarded-For believed; null: "
                                                     "none, the peer address is the client")
    api_keys: tuple[str, ...] | None = option(None, "SHA-256 hex digests of the API keys accepted as "
                                              "`Authorization: Bearer KEY` (`python -m app.web.keys` makes one); "
                                              "null: the API is open")
    api_keys_file: str | None = option(None, "a file of more such digests, one per line ('#' starts a comment)")
    page_session: bool = option(True, "with API keys on, the upload page's own browser session may use the API "
                                      "without a key (a signed, same-site cookie); false: every API call needs "
                                      "a key")
    log_level: str = option("INFO", "logging level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    keep_gps: bool = option(False, "keep the photo's EXIF GPS position (where it was taken) in the results (CLI and "
                                   "web); false: the rest of the EXIF is kept, the position dropped, since results "
                                   "are often passed on to others")

    def __post_init__(self) -> None:
        validate(self)
        if not _QUEUE_NAME.fullmatch(self.redis_queue):
            raise ConfigError("redis_queue", f"use 1 to 64 letters, digits, '_', '-' or '.'; got {self.redis_queue!r}")
        if self.rate_limit is not None:
            from limits import parse_many

            try:
                parse_many(self.rate_limit)
            except ValueError as exc:
                raise ConfigError("rate_limit", f"not a rate like 10/minute: {self.rate_limit!r}") from exc
        for network in self.trusted_proxies or ():
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ConfigError("trusted_proxies", f"not an address or network: {network!r}") from exc
        for digest in self.api_keys or ():
            if not _SHA256_HEX.fullmatch(digest):
                raise ConfigError("api_keys", "give each key's SHA-256 as 64 hex digits (python -m app.web.keys), "
                                              "never the key itself")

    def replace(self, **changes: Any) -> "ServiceConfig":
        return build(ServiceConfig, {**dataclasses.asdict(self), **changes})


SERVICE_KEYS = frozenset(f.name for f in dataclasses.fields(ServiceConfig))
# The engine's files (check_paths); warm_start may instead say "auto" (the input chooses; see EngineConfig).
PATH_KEYS = ("kernel", "warm_start", "photo_warm_start", "clean_warm_start", "blurry_warm_start",
             "later_warm_start")
SERVICE_PATH_KEYS = ("api_keys_file",)


@dataclass(frozen=True)
class Settings:
    """The whole configuration: the engine's part and the service's part."""

    engine: EngineConfig
    service: ServiceConfig

    def replace(self, **changes: Any) -> "Settings":
        """A new Settings with flat key changes routed to the part that owns each key; engine keys changed here
        win over every input profile (EngineConfig.pinned)."""
        return pinned(split({**as_flat(self), **changes}), changes)


def pinned(settings: Settings, changes: Mapping[str, Any]) -> Settings:
    """`settings` with the engine keys among `changes` kept whatever profile the input chooses."""
    pins = {k: v for k, v in changes.items() if k in ENGINE_KEYS and k not in ("profile", "profiles")}
    if not pins or settings.engine.profiles is None:
        return settings
    return Settings(settings.engine.pinned(**pins), settings.service)


def as_flat(settings: Settings) -> dict[str, Any]:
    return {**dataclasses.asdict(settings.engine), **dataclasses.asdict(settings.service)}


def split(values: Mapping[str, Any]) -> Settings:
    """Route flat keys to EngineConfig or ServiceConfig; a key neither knows raises ConfigError."""
    for key in values:
        if key not in ENGINE_KEYS and key not in SERVICE_KEYS:
            raise ConfigError(key, "unknown key")
    engine = build(EngineConfig, {k: v for k, v in values.items() if k in ENGINE_KEYS})
    service = build(ServiceConfig, {k: v for k, v in values.items() if k in SERVICE_KEYS})
    return Settings(engine, service)


def parse_value(text: str) -> Any:
    """A command-line value: JSON where it parses as JSON (numbers, true/false, null, lists), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def load_settings(path: str | os.PathLike | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read a flat JSON config file (default: the repository's config.json) and apply `overrides`."""
    path = Path(path) if path is not None else DEFAULT_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(values, dict):
        raise ConfigError("config", f"{path} must hold a JSON object")
    values.pop("_comment", None)
    resolve_paths(values, path)
    for changes in (values.get("profiles") or {}).values():
        if isinstance(changes, dict):
            resolve_paths(changes, path)
    overrides = overrides or {}
    return pinned(split({**values, **overrides}), overrides)


def resolve_paths(values: dict[str, Any], config_path: Path) -> None:
    """The file paths among `values` (a config file's keys, or a profile's), resolved in place (resolve_path)."""
    for key in PATH_KEYS + SERVICE_PATH_KEYS:
        if isinstance(values.get(key), str) and not (key == "warm_start" and values[key] == AUTO):
            values[key] = resolve_path(values[key], config_path)


def resolve_path(value: str, config_path: str | os.PathLike) -> str:
    """Where a relative file path written in a config file points: beside the config file when a file is there,
    else under the repository root (so the shipped `app/engine/weights/...` values work from a config file kept
    anywhere), else beside the config file (where the error will name it). Absolute paths stay as they are;
    paths given as overrides (command line) are not passed through here and stay relative to the working
    directory, as a shell user expects."""
    if Path(value).is_absolute():
        return value
    beside = Path(config_path).resolve().parent / value
    if not beside.exists() and (REPOSITORY_ROOT / value).exists():
        return str(REPOSITORY_ROOT / value)
    return str(beside)


def check_paths(engine: EngineConfig) -> None:
    """Raise ConfigError naming the key when a file the engine will read (`kernel`, `warm_start`) is missing or
    unreadable, in the config or in any of its profiles. Torch-free: a web process on the Redis backend checks
    this much; workers check everything (app.engine.checks)."""
    for name, config in [(None, engine), *((n, engine.with_profile(n)) for n in engine.profiles or {})]:
        for key in PATH_KEYS:
            value = getattr(config, key)
            if value is None or (key == "warm_start" and value == AUTO):
                continue
            if name is not None and key not in engine.profiles[name]:
                continue  # the config's own, checked once
            try:
                with open(value, "rb") as file:
                    file.read(1)
            except OSError as exc:
                where = key if name is None else f"profiles.{name}.{key}"
                raise ConfigError(where, f"cannot read {value}: {exc.strerror or exc}") from exc
