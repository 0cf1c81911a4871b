"""Choosing the compute device once, from the config's "auto", "cpu", "cuda" or "cuda:N"."""

from __future__ import annotations

import torch

from app.errors import ConfigError


def select_device(name: str) -> torch.device:
    """The torch device for `name`; "auto" is CUDA when present, else the CPU. Called at run time only."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", f"{name!r} was asked for but CUDA is not available on this machine")
    device = torch.device(name)
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError("device", f"{name!r} was asked for but this machine has {torch.cuda.device_count()} "
                                    "CUDA device(s)")
    return device


def describe(device: torch.device) -> str:
    """A human name: "cpu (2 threads)" or "cuda:0 (NVIDIA H100 80GB HBM3)"."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'s' if threads != 1 else ''})"


def describe_device(config) -> str:
    """The device the engine would use for `config`, by name."""
    return describe(select_device(config.device))
