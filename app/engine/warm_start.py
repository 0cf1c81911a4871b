"""Initial network weights for test-time training: saving and loading them with their architecture checked."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from app.engine.config import AUTO
from app.errors import ConfigError

ARCH_KEYS = ("in_channels", "model_width", "model_depth", "model_kernel_size", "model_fold")
# What files written before a key existed were: the paper's network.
ARCH_DEFAULTS = {"model_fold": 1}


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_weights(net: torch.nn.Module, config: Any, path: str | Path, recipe: dict, extra: dict | None = None) -> None:
    """Write the network's weights with its architecture and how they were made (and `extra` entries, such as a
    pre-training run's optimizer state; readers of weights ignore them)."""
    arch = {k: getattr(config, k) for k in ARCH_KEYS}
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    torch.save({**(extra or {}), "arch": arch, "state_dict": state, "recipe": recipe}, path)


def recorded_arch(arch: dict) -> dict:
    """A weights file's recorded architecture, with the keys it predates at what they were then."""
    return {k: arch.get(k, ARCH_DEFAULTS.get(k)) for k in ARCH_KEYS}


def with_arch(config: Any, arch: dict) -> Any:
    """`config` with the network architecture `arch` (a weights file's) in place of its own."""
    return dataclasses.replace(config, **recorded_arch(arch))


def file_arch(path: str | Path, key: str = "warm_start") -> dict:
    """The architecture the weights file at `path` was trained with."""
    return recorded_arch(read_checkpoint(path, key)["arch"])


def file_arch_of(net: torch.nn.Module) -> dict:
    """The architecture of a built network, as a weights file records it."""
    return {k: getattr(net, "config_" + k) for k in ARCH_KEYS}


def read_checkpoint(path: str | Path, key: str = "warm_start") -> dict:
    """The weights file at `path`; ConfigError naming the config `key` that gave it when it is not one."""
    try:
        # TorchVersion (a str subclass) is allowed so that recipes that recorded torch.__version__ load.
        with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's unpickler raises many types for a damaged file (KeyError for some)
        raise ConfigError(key, f"cannot read weights from {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "arch" not in checkpoint:
        raise ConfigError(key, f"{path} is not a weights file written by this project")
    return checkpoint


def load_weights(net: torch.nn.Module, path: str | Path, scale_factor: float | None = None,
                 key: str = "warm_start", checkpoint: dict | None = None) -> dict:
    """Load weights into `net` (whose config must match the file's architecture); returns the checkpoint.

    With `scale_factor`, a file whose recipe records another scale is refused: x2 weights start an x3 step
    with detail of the wrong size, and nothing else would say so. Errors name the config `key` that gave `path`.
    """
    checkpoint = read_checkpoint(path, key) if checkpoint is None else checkpoint  # `path`'s, already read
    arch = checkpoint["arch"]
    trained = (checkpoint.get("recipe") or {}).get("scale_factor")
    if scale_factor is not None and trained is not None and float(trained) != float(scale_factor):
        raise ConfigError(key, f"{path} was trained for x{float(trained):g} steps, but scale_factor is "
                               f"{float(scale_factor):g}; use weights trained at x{float(scale_factor):g} "
                               f"or set {key} to null")
    recorded = recorded_arch(arch)
    for arch_key in ARCH_KEYS:
        wanted = getattr(net, "config_" + arch_key, None)
        if wanted is not None and recorded[arch_key] != wanted:
            raise ConfigError(key, f"{path} was trained with {arch_key}={arch.get(arch_key)}, config has {wanted}")
    try:
        net.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as exc:
        raise ConfigError(key, f"{path} does not fit this network ({arch}): {exc}") from exc
    return checkpoint


@dataclass(frozen=True)
class WarmStart:
    """The weights a run starts from and why those: `path` None is from scratch."""

    path: str | None
    reason: str

    def describe(self) -> dict:
        return {"weights": None if self.path is None else Path(self.path).name, "chosen_by": self.reason}


def choose_warm_start(config: Any, jpeg: bool, blurry: bool = False) -> WarmStart:
    """The warm start for an input (`jpeg`: it is a JPEG file; `blurry`: the blur reader found it blurry, see
    blurry_photo_std). A file or null in `warm_start` is the config's choice; `auto` lets the input choose: a given
    kernel or a lossless image starts from `clean_warm_start` (their sons are clean), a blurry JPEG from
    `blurry_warm_start` where one is set, any other JPEG from `photo_warm_start` (trained on compressed, noisy,
    sometimes blurred sons, as photos are)."""
    if config.warm_start != AUTO:
        return WarmStart(config.warm_start, "the config" if config.warm_start else "the config (from scratch)")
    if config.kernel:
        return WarmStart(config.clean_warm_start, "a blur kernel is given")
    if jpeg and blurry and config.blurry_warm_start:
        return WarmStart(config.blurry_warm_start, "a blurry JPEG input")
    if jpeg:
        return WarmStart(config.photo_warm_start, "a JPEG input")
    return WarmStart(config.clean_warm_start, "a lossless input")
