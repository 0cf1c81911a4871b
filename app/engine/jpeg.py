"""The engine's name for a photo's JPEG profile; the torch-free reader itself lives in app.jpeg_profile."""

from app.jpeg_profile import JpegProfile, ijg_table

__all__ = ["JpegProfile", "ijg_table"]
