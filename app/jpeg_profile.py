"""A photo's JPEG encoding (quantization tables, chroma subsampling, an estimated quality) and re-encoding with it.

Torch-free and importing nothing from the app, so that every layer may use it: the web reads the upload's profile
and hands the job this small record, the engine compresses the LR sons with it (app.engine.jpeg re-exports it).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, JpegImagePlugin, UnidentifiedImageError

# The IJG (libjpeg) luminance table at quality 50, in natural (row-major) order, as Pillow reports tables.
_IJG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])
_SUBSAMPLING_NAMES = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}


def ijg_table(quality: int, base: np.ndarray = _IJG_LUMA) -> np.ndarray:
    """libjpeg's scaling of a base table to `quality` (1..100), baseline-clamped to 1..255."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((base * scale + 50) // 100, 1, 255)


@dataclass(frozen=True)
class JpegProfile:
    """How a JPEG photo was compressed: enough to compress other images the same way."""

    qtables: tuple[tuple[int, ...], ...]  # 64 values each, natural order (one may serve every component)
    subsampling: int  # Pillow's code: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0
    quality: int  # the IJG quality whose luminance table is nearest (for people to read)
    grayscale: bool = False  # a one-component JPEG: only luma is compressed

    @classmethod
    def read(cls, data: bytes) -> JpegProfile | None:
        """The profile of JPEG file bytes; None when they are not a readable JPEG."""
        try:
            with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
                return cls.from_image(image)
        except (OSError, SyntaxError, ValueError, EOFError, UnidentifiedImageError):
            return None

    @classmethod
    def from_image(cls, image: Image.Image) -> JpegProfile | None:
        """The profile of an image Pillow opened from a JPEG (before any conversion); None otherwise."""
        tables = getattr(image, "quantization", None)
        if not tables:
            return None
        qtables = tuple(tuple(int(v) for v in tables[k]) for k in sorted(tables))
        if any(len(t) != 64 for t in qtables):
            return None
        # Pillow says -1 for grayscale, CMYK and unusual samplings (4:1:1...): those are re-encoded as 4:2:0,
        # the nearest it can write (a grayscale profile encodes luma only and ignores it).
        sampling = JpegImagePlugin.get_sampling(image)
        subsampling = sampling if sampling in _SUBSAMPLING_NAMES else 2
        luma = np.array(qtables[0])
        quality = min(range(1, 101), key=lambda q: (int(np.abs(ijg_table(q) - luma).sum()), -q))
        return cls(qtables, subsampling, quality, image.mode == "L")

    @classmethod
    def from_dict(cls, values: dict) -> JpegProfile:
        """The inverse of dataclasses.asdict (JSON turns the tables into lists)."""
        return cls(tuple(tuple(t) for t in values["qtables"]), values["subsampling"], values["quality"],
                   values.get("grayscale", False))

    @classmethod
    def standard(cls, quality: int, subsampling: int = 2) -> JpegProfile:
        """The profile Pillow (libjpeg) writes at `quality`, read back from a tiny encoded image."""
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buffer, format="JPEG", quality=quality, subsampling=subsampling)
        profile = cls.read(buffer.getvalue())
        assert profile is not None
        return profile

    def describe(self) -> dict:
        """A JSON-ready summary for people: the quality estimate and the chroma subsampling."""
        return {"quality": self.quality,
                "subsampling": "grayscale" if self.grayscale else _SUBSAMPLING_NAMES[self.subsampling]}

    def encode(self, pixels: np.ndarray) -> bytes:
        """JPEG bytes of `pixels` (uint8, (H, W, 3) RGB or (H, W) gray) with this profile's tables."""
        image = Image.fromarray(pixels)
        if self.grayscale and image.mode != "L":
            image = image.convert("L")
        buffer = io.BytesIO()
        qtables = [list(t) for t in self.qtables]
        if image.mode == "L":
            image.save(buffer, format="JPEG", qtables=qtables[:1])  # luma's table
        else:
            image.save(buffer, format="JPEG", qtables=qtables, subsampling=self.subsampling)
        return buffer.getvalue()

    def roundtrip(self, pixels: np.ndarray) -> np.ndarray:
        """`pixels` compressed with this profile and decoded again: same shape and dtype (uint8)."""
        with Image.open(io.BytesIO(self.encode(pixels)), formats=["JPEG"]) as decoded:
            out = np.asarray(decoded.convert("RGB" if pixels.ndim == 3 else "L"))
        return out
