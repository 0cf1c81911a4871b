"""The ZSSR engine (PyTorch only): learn from one image and enlarge it. No web or job code here.

Names are loaded on first use, so that `from app.engine import EngineConfig` (the config alone) does not import
torch: a web process on the Redis backend never needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EngineConfig": "app.engine.config",
    "describe_device": "app.engine.device", "select_device": "app.engine.device",
    "load_image": "app.engine.image_io", "save_image": "app.engine.image_io",
    "preflight": "app.engine.checks",
    "SRResult": "app.engine.zssr", "bicubic_resize": "app.engine.zssr", "super_resolve": "app.engine.zssr",
    "warm_up": "app.engine.zssr",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'app.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
