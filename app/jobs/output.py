"""What an enlargement is written as: its format and quality, and the photo's colour profile and EXIF carried over.

Torch-free (Pillow only): the web side reads the upload's metadata, the job encodes the result with it.
- The ICC profile: an RGB photo keeps its own (an Adobe RGB photo stays Adobe RGB, tagged, with its pixel values
  untouched); a CMYK photo is converted to sRGB through its embedded profile (Pillow's ImageCms, not the naive
  formula) and tagged sRGB; a grayscale profile cannot tag the RGB result and is dropped.
- EXIF: kept, with the orientation reset (the pixels are already upright), the pixel dimensions set to the
  result's, and the thumbnail left out (it would show the small original).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageCms, ExifTags

FORMATS = {"png": ("PNG", "image/png", "png"), "webp": ("WEBP", "image/webp", "webp"),
           "jpeg": ("JPEG", "image/jpeg", "jpg")}
DEFAULT_QUALITY = 90
# Fast PNG compression: the images are a few megapixels at most and go straight to a browser.
_PNG_LEVEL = 3

_ORIENTATION = ExifTags.Base.Orientation
_WIDTHS = (ExifTags.Base.ImageWidth, ExifTags.Base.ExifImageWidth)
_HEIGHTS = (ExifTags.Base.ImageLength, ExifTags.Base.ExifImageHeight)


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@dataclass(frozen=True)
class OutputSpec:
    """How to write the result: `format` (png, webp, jpeg), `quality` (webp, jpeg), and the metadata to carry."""

    format: str = "png"
    quality: int = DEFAULT_QUALITY
    icc: bytes | None = None  # the profile the result's pixels are in
    exif: bytes | None = None  # the photo's EXIF, as read (adjusted when written)

    @property
    def mimetype(self) -> str:
        return FORMATS[self.format][1]

    @property
    def extension(self) -> str:
        return FORMATS[self.format][2]


def to_rgb(image: Image.Image) -> tuple[Image.Image, bytes | None]:
    """The photo as RGB pixels and the ICC profile they are in (None: untagged, taken as sRGB)."""
    icc = image.info.get("icc_profile") or None
    if image.mode == "RGB":
        return image, icc
    if image.mode == "CMYK" and icc:
        try:
            converted = ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                                  ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")),
                                                  outputMode="RGB")
            return converted, srgb_profile()
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a damaged profile: the naive conversion below
    return image.convert("RGB"), None


def exif_for(exif: bytes | None, size: tuple[int, int]) -> bytes | None:
    """The photo's EXIF for a result of `size`: upright, its dimensions, no thumbnail; None if unreadable."""
    if not exif:
        return None
    data = Image.Exif()
    try:
        data.load(exif)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError, IndexError):
        return None
    if _ORIENTATION in data:
        data[_ORIENTATION] = 1
    for tag in _WIDTHS[:1]:
        if tag in data:
            data[tag] = size[0]
    for tag in _HEIGHTS[:1]:
        if tag in data:
            data[tag] = size[1]
    sub = data.get_ifd(ExifTags.IFD.Exif)
    if _WIDTHS[1] in sub or _HEIGHTS[1] in sub:
        sub[_WIDTHS[1]], sub[_HEIGHTS[1]] = size
    # IFD1 (the thumbnail) is not written by Pillow's Exif.tobytes(): only IFD0 and its sub-IFDs are.
    return data.tobytes()


def encode(image: Image.Image, spec: OutputSpec, *, with_exif: bool = True) -> bytes:
    """`image` (RGB) in `spec`'s format, tagged with its profile and (with_exif) the adjusted EXIF."""
    kwargs: dict = {}
    if spec.icc:
        kwargs["icc_profile"] = spec.icc
    exif = exif_for(spec.exif, image.size) if with_exif else None
    if exif:
        kwargs["exif"] = exif
    name = FORMATS[spec.format][0]
    if name == "PNG":
        kwargs["compress_level"] = _PNG_LEVEL
    else:
        kwargs["quality"] = spec.quality
    buffer = io.BytesIO()
    image.save(buffer, format=name, **kwargs)
    return buffer.getvalue()
