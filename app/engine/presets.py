"""Named engine settings for the benchmark and the CLI: the authors' defaults and faster variants.

Each preset sets every key that shapes training and enlarging, input profiles off and the sons' noise and JPEG
included, so that applying one over any config (config.json included) gives the same algorithm; device, threads,
seed, scale, time budget and the kernel (given, or to be estimated) stay the caller's, and keys the caller gives
with the preset win.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.engine.config import EngineConfig
from app.errors import ConfigError

# The shipped warm-start network (8 layers, 64 channels, x2), pre-trained by app/pretrain.py on T91, General100
# and BSD200 only; its recipe is in the JSON file beside it.
WARM_START_X2 = Path(__file__).resolve().parent / "weights" / "zssr_x2.pt"

# Shocher et al.'s released defaults: up to 3000 iterations, crop 128, self-ensemble, 10 back-projections,
# the learning-rate policy checked every 60 iterations over the last 256, from scratch.
PAPER: dict[str, Any] = {
    "model_width": 64, "model_depth": 8, "model_kernel_size": 3, "model_fold": 1, "lr": 1e-3, "lr_stop": 9e-6,
    "lr_decay": 0.1, "lr_decay_ratio": 1.5, "lr_decay_range": 256, "lr_decay_step": 60, "eval_every": 50,
    "num_epochs": 3000, "min_iters": 256, "crop_size": 128, "batch_size": 1, "back_projection_iters": 10, "self_ensemble": True,
    "ensemble_steps": None,
    "warm_start": None, "time_budget_s": None,
    # Where the authors' code does otherwise, the engine's choice (measured: see the README's "How it works").
    "father_augment": "dihedral", "father_sampling": "area", "gradual_mode": "chain", "init_variance": None,
    "carry_optimizer": False, "gradual_scales": None, "later_warm_start": None, "learning_check": False,
    "blurry_photo_std": None, "learning_share": 1.0, "first_step_share": None, "test_time_learning": True,
    "iteration_budget": None, "kernel_augment": False,
    # The authors' ideal case: clean bicubic sons (their real-image config adds noise: give noise_std with the
    # preset), no input profiles.
    "noise_std": 0.0, "estimate_noise": False, "sons_jpeg": False, "profile": "auto", "profiles": None,
}

# The authors' gradual x2 (X2_GRADUAL_IDEAL_CONF in their configs.py): six steps from the input itself, through
# x1.5 on one axis, then the other, to x2; each step trains on, and then enlarges, the input at its total scale,
# the earlier outputs joining the fathers. Their README gives it about 0.3 dB over one x2 step at six times the time.
# (Their back-projections grow over the steps, 6 to 12; here every step does `back_projection_iters`.)
AUTHORS_GRADUAL_X2 = [[1.0, 1.5], [1.5, 1.0], [1.5, 1.5], [1.5, 2.0], [2.0, 1.5], [2.0, 2.0]]

# A preset's `gradual_scales` may depend on the total scale: a dict from total scale to steps, resolved by
# preset_config once the caller's scale is known; a total it does not list takes scale_factor ** k at step k.
AUTHORS_GRADUAL = {2.0: AUTHORS_GRADUAL_X2}

# Test-time training from the warm start: the network already knows generic detail, so a short schedule at a
# lower rate adapts it to the image.
FAST: dict[str, Any] = {
    **PAPER, "warm_start": str(WARM_START_X2), "lr": 2e-4, "lr_stop": 2e-6, "num_epochs": 400,
    "eval_every": 20, "lr_decay_step": 30, "lr_decay_range": 100, "min_iters": 100, "crop_size": 96,
}

PRESETS: dict[str, dict[str, Any]] = {
    "paper": PAPER,
    # The authors' settings with bfloat16 autocast on CUDA (a no-op on the CPU).
    "paper-bf16": {**PAPER, "mixed_precision": True},
    # The authors' gradual mode: at x2 their six steps; at other totals, grow by scale_factor ** k at step k.
    "paper-gradual": {**PAPER, "gradual_mode": "grow", "gradual_scales": AUTHORS_GRADUAL},
    "fast": FAST,
    # The same schedule and time as `fast`, from scratch: what the warm start buys at equal time.
    "fast-scratch": {**FAST, "warm_start": None, "lr": PAPER["lr"], "lr_stop": PAPER["lr_stop"]},
}


def preset_config(name: str, base: EngineConfig | None = None, **overrides: Any) -> EngineConfig:
    """`base` (default: EngineConfig()) with preset `name` and then `overrides` applied; give the caller's scale
    among the overrides (not after), since a preset's gradual steps may depend on it."""
    if name not in PRESETS:
        raise ConfigError("preset", f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    base = base or EngineConfig()
    values = {**PRESETS[name], **overrides}
    by_total = values.get("gradual_scales")
    if not isinstance(by_total, dict):
        return base.replace(**values)
    # Validated (the scale included) before the steps are looked up by its total scale.
    config = base.replace(**{**values, "gradual_scales": None})
    return config.replace(gradual_scales=by_total.get(config.total_scale))
