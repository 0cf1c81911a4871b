"""Checks, before any job, that the engine can run with a config: the device, the kernel file, the warm start."""

from __future__ import annotations

import numpy as np

from app.engine.config import AUTO, EngineConfig
from app.engine.device import describe, select_device
from app.engine.network import ZSSRNet
from app.engine.resize import load_kernel
from app.engine.warm_start import load_weights, read_checkpoint, with_arch
from app.errors import ConfigError


def config_kernel(config: EngineConfig) -> np.ndarray | None:
    """The blur kernel of `kernel` (None without one); ConfigError when it cannot be read or the scale is not an
    integer."""
    if not config.kernel:
        return None
    kernel = load_kernel(config.kernel)
    if not float(config.scale_factor).is_integer():
        raise ConfigError("kernel", "a blur kernel needs an integer scale_factor")
    return kernel


def preflight(config: EngineConfig) -> str:
    """Raise ConfigError naming the key when a job with `config` could not run; else the device, by name.

    What a job would find out only when it runs: a device that is not there, a kernel file that cannot be read
    or a scale it cannot serve, a warm start (either) that cannot be read or does not fit the network or the scale. A
    service or a worker calls this when it starts, so that none of these reaches a user as a failed job. Each
    input profile's config is checked too; an error in a key a profile sets names it as profiles.NAME.KEY.
    """
    device = select_device(config.device)
    config_kernel(config)
    _check_weights(config)
    for name, changes in (config.profiles or {}).items():
        try:
            _check_weights(config.with_profile(name))
        except ConfigError as exc:
            raise (ConfigError(f"profiles.{name}.{exc.key}", exc.message) if exc.key in changes else exc) from exc
    return describe(device)


def _check_weights(config: EngineConfig) -> None:
    """The warm starts of one config: readable, fitting the network and the scale, seeing the same planes."""
    chosen = ("photo_warm_start", "clean_warm_start", "blurry_warm_start") if config.warm_start == AUTO \
        else ("warm_start",)
    channels = {}
    for key in chosen + ("later_warm_start",):
        if path := getattr(config, key):
            # Each file is built into the network it was trained as (see zssr.build_model).
            checkpoint = read_checkpoint(path, key)
            net = ZSSRNet(with_arch(config, checkpoint["arch"]))
            load_weights(net, path, config.scale_factor, key, checkpoint)
            channels[key] = net.config_in_channels
    later = channels.pop("later_warm_start", None)
    blurry = channels.pop("blurry_warm_start", None)
    if blurry is not None and blurry != channels.get("photo_warm_start", blurry):
        raise ConfigError("blurry_warm_start", f"{config.blurry_warm_start} sees {blurry} channels, "
                                               f"photo_warm_start {channels['photo_warm_start']}; a photo's planes "
                                               "are made before its blur is read")
    first = set(channels.values()) or {config.in_channels}
    if later is not None and first != {later}:
        raise ConfigError("later_warm_start", f"{config.later_warm_start} sees {later} channels, the first step's "
                                              f"network {' or '.join(map(str, sorted(first)))}; the steps share "
                                              "their planes")
