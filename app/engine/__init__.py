"""The ZSSR engine (PyTorch only): learn from one image and enlarge it. No web or job code here."""

from app.engine.config import EngineConfig
from app.engine.device import describe_device, select_device
from app.engine.image_io import load_image, save_image
from app.engine.zssr import SRResult, bicubic_resize, super_resolve, warm_up

__all__ = ["EngineConfig", "SRResult", "bicubic_resize", "describe_device", "load_image", "save_image",
           "select_device", "super_resolve", "warm_up"]
