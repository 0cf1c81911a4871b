"""Named engine settings for the benchmark and the CLI: the authors' defaults and faster variants."""

from __future__ import annotations

from typing import Any

from app.engine.config import EngineConfig
from app.errors import ConfigError

PRESETS: dict[str, dict[str, Any]] = {
    # Shocher et al.'s released defaults: up to 3000 iterations, crop 128, self-ensemble, back-projection.
    "paper": {},
    # The authors' settings with bfloat16 autocast on CUDA (a no-op on the CPU).
    "paper-bf16": {"mixed_precision": True},
    # For CPUs: the same network and policy on a compressed schedule.
    "fast": {"num_epochs": 600, "eval_every": 10, "lr_decay_step": 20, "lr_decay_range": 80, "min_iters": 80,
             "crop_size": 96, "lr_stop": 9e-6},
}


def preset_config(name: str, base: EngineConfig | None = None, **overrides: Any) -> EngineConfig:
    """`base` (default: EngineConfig()) with preset `name` and then `overrides` applied."""
    if name not in PRESETS:
        raise ConfigError("preset", f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    base = base or EngineConfig()
    return base.replace(**{**PRESETS[name], **overrides})
