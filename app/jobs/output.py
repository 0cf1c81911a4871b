"""What an enlargement is written as: its format and quality, and the photo's colour profile and EXIF carried over.

Torch-free (Pillow only): the web side reads the upload's metadata, the job encodes the result with it; the
command line reads a file's and writes with the same encoder (`save`).
- The ICC profile: an RGB photo keeps its own (an Adobe RGB photo stays Adobe RGB, tagged, with its pixel values
  untouched); a CMYK photo is converted to sRGB through its embedded profile (Pillow's ImageCms, not the naive
  formula) and tagged sRGB; a grayscale profile cannot tag the RGB result and is dropped.
- EXIF: kept, with the orientation reset (the pixels are already upright), the pixel dimensions set to the
  result's, and the thumbnail left out (it would show the small original). Its GPS position goes unless config
  key keep_gps says otherwise (`without_gps`, applied where the photo is read).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO

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
        converted = _cmyk_to_srgb(image, icc)
        if converted is not None:
            return converted, srgb_profile()
    return image.convert("RGB"), None


def with_profile(image: Image.Image) -> tuple[Image.Image, bytes | None]:
    """The photo in its own mode (gray, alpha and palette kept, as the command line keeps them) and the ICC profile
    its pixels are in: CMYK is converted to sRGB through its profile as in to_rgb; a profile that describes other
    colours than the result's (a gray one on a colour result, say) is dropped."""
    if image.mode == "CMYK":
        return to_rgb(image)
    icc = image.info.get("icc_profile") or None
    gray = image.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")  # the engine's gray results
    if icc and _colour_space(icc) not in (None, "GRAY" if gray else "RGB"):
        icc = None
    return image, icc


def _colour_space(icc: bytes) -> str | None:
    """The colour space an ICC profile describes ("RGB", "GRAY", "CMYK"...); None if it cannot be read."""
    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile.xcolor_space.strip()
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def _cmyk_to_srgb(image: Image.Image, icc: bytes) -> Image.Image | None:
    """A CMYK image converted through its own profile to sRGB (Pillow's ImageCms); None if the profile is damaged."""
    try:
        return ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                         ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")),
                                         outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None


def _read_exif(exif: bytes | None) -> Image.Exif | None:
    """The EXIF block parsed; None when there is none or Pillow cannot read it."""
    if not exif:
        return None
    data = Image.Exif()
    try:
        data.load(exif)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError, IndexError):
        return None
    return data


def exif_for(exif: bytes | None, size: tuple[int, int]) -> bytes | None:
    """The photo's EXIF for a result of `size`: upright, its dimensions, no thumbnail; None if unreadable."""
    data = _read_exif(exif)
    if data is None:
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


def without_gps(exif: bytes | None) -> bytes | None:
    """`exif` without its GPS IFD (where the photo was taken), everything else as it was; None if unreadable."""
    if not exif:
        return exif
    data = _read_exif(exif)
    if data is None:
        return None
    if ExifTags.IFD.GPSInfo not in data:
        return exif
    del data[ExifTags.IFD.GPSInfo]
    return data.tobytes()


def encode(image: Image.Image, spec: OutputSpec, *, with_exif: bool = True) -> bytes:
    """`image` (RGB) in `spec`'s format, tagged with its profile and (with_exif) the adjusted EXIF."""
    buffer = io.BytesIO()
    save(image, buffer, FORMATS[spec.format][0], spec.quality, spec.icc, spec.exif if with_exif else None)
    return buffer.getvalue()


def save(image: Image.Image, file: BinaryIO, name: str, quality: int = DEFAULT_QUALITY, icc: bytes | None = None,
         exif: bytes | None = None) -> None:
    """Write `image` to `file` in Pillow's format `name` (PNG, WEBP, JPEG; the command line may name others),
    with `quality` where the format is lossy, tagged with `icc` and the photo's `exif` adjusted to the result.
    Alpha stays where the format has it; JPEG, which has none, gets the colour alone."""
    if name == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("L" if image.mode == "LA" else "RGB")
    # Given even when empty: Pillow would otherwise tag the file with whatever `image.info` holds.
    kwargs: dict = {"icc_profile": icc or b"", "exif": exif_for(exif, image.size) or b""}
    if name == "PNG":
        kwargs["compress_level"] = _PNG_LEVEL
    elif name in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    image.save(file, format=name, **kwargs)
