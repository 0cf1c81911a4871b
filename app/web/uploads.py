"""Reads an upload into an upright RGB photo (in memory only), refusing what is not a usable JPEG; picks the crop."""

from __future__ import annotations

import io
import logging
import random
from typing import IO

from flask import Request
import numpy as np
from PIL import Image, ImageOps

from app.config import ServiceConfig
from app.errors import BadImageError, ImageTooLargeError, ImageTooSmallError, InvalidRequestError, NotJPEGError
from app.jobs import Box
from app.jobs.output import to_rgb

log = logging.getLogger(__name__)

JPEG_MAGIC = b"\xff\xd8\xff"
# Pillow opens multi-picture JPEGs (many phone photos) with its JPEG plugin and names them "MPO"; their first
# picture is an ordinary JPEG.
JPEG_FORMATS = ("JPEG", "MPO")
MEGABYTE = 1_000_000
# A random region is drawn from this many uniformly placed candidates (see choose_crop).
RANDOM_CANDIDATES = 64
# Room for the multipart framing and the small form fields around the file.
FORM_OVERHEAD_BYTES = 64 * 1024


class InMemoryRequest(Request):
    """A request whose uploaded files stay in memory: nothing reaches the disk, under any name.

    The body is bounded by MAX_CONTENT_LENGTH before it is read, so memory use is bounded too.
    """

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None, content_length: int | None = None) -> IO[bytes]:
        return io.BytesIO()


def max_upload_bytes(service: ServiceConfig) -> int:
    """`max_MB` in bytes (decimal megabytes), rounded: int() would cut a limit of 1956 bytes (0.001956 MB) to 1955."""
    return round(service.max_MB * MEGABYTE)


def read_photo(data: bytes, service: ServiceConfig) -> Image.Image:
    """The upload as an upright RGB photo, with `info["icc_profile"]` (the profile its pixels are in) and
    `info["exif"]` (as uploaded) where the photo has them; raises a BadImageError subclass that says what is
    wrong."""
    if len(data) > max_upload_bytes(service):
        raise ImageTooLargeError(f"the file is {len(data) / MEGABYTE:.1f} MB; at most {service.max_MB:g} MB "
                                 "is accepted")
    if not data:
        raise InvalidRequestError("the uploaded file is empty")
    if not data.startswith(JPEG_MAGIC):
        raise NotJPEGError("the file is not a JPEG photo; please upload a .jpg")
    try:
        image = Image.open(io.BytesIO(data), formats=["JPEG"])
    except Image.DecompressionBombError:
        raise ImageTooLargeError(f"the photo has too many pixels; at most {service.max_pixels:,} are accepted") \
            from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # UnidentifiedImageError is an OSError
        log.info("unreadable JPEG header: %s", exc)
        raise BadImageError("the file starts like a JPEG but cannot be read; it may be truncated or corrupt") \
            from None
    if image.format not in JPEG_FORMATS:
        raise NotJPEGError("the file is not a JPEG photo; please upload a .jpg")
    width, height = image.size
    # Only the header has been read so far: refuse decompression bombs before decoding any pixels.
    if width * height > service.max_pixels:
        raise ImageTooLargeError(f"the photo is {width}x{height} pixels; at most {service.max_pixels:,} pixels "
                                 "are accepted")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        log.info("unreadable JPEG: %s", exc)
        raise BadImageError("the JPEG is truncated or corrupt; please upload the whole file") from None
    exif = image.info.get("exif")
    image = _upright(image)
    # Grayscale ("L") and CMYK JPEGs become RGB; a CMYK photo's own ICC profile is used for it (app.jobs.output).
    image, icc = to_rgb(image)
    image.info.pop("icc_profile", None)
    image.info.pop("exif", None)
    if icc:
        image.info["icc_profile"] = icc  # the profile the RGB pixels are in
    if exif:
        image.info["exif"] = exif
    if min(image.size) < service.min_side:
        raise ImageTooSmallError(f"the photo is {image.width}x{image.height} pixels; it needs at least "
                                 f"{service.min_side} pixels on each side to be enlarged meaningfully")
    return image


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, as cameras and browsers do; a broken EXIF block is ignored."""
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError) as exc:
        log.info("EXIF orientation ignored: %s", exc)
        return image


def choose_crop(photo: Image.Image, crop: int, x: int | None, y: int | None, seed: int | None) -> Box:
    """The region to enlarge: `crop` pixels a side, shrunk to the photo; at (x, y) or at random (by `seed`).

    A random region is drawn from uniformly placed candidates with a chance in proportion to the square of each
    one's detail (twice the detail, four times as likely): a flat patch of sky or wall enlarges the same whatever
    the method and would show the person nothing, yet every region with any detail keeps a chance (where all are
    flat, each candidate is as likely), and the seed fixes the draw.
    """
    width, height = photo.size
    w, h = min(crop, width), min(crop, height)
    if (x is None) != (y is None):
        raise InvalidRequestError("give both x and y, or neither for a random region")
    if x is None:
        rng = random.Random(seed) if seed is not None else random.SystemRandom()
        candidates = [Box(rng.randrange(width - w + 1), rng.randrange(height - h + 1), w, h)
                      for _ in range(RANDOM_CANDIDATES)]
        weights = [_detail(photo, box) ** 2 for box in candidates]
        if not any(weights):
            return candidates[rng.randrange(len(candidates))]
        return rng.choices(candidates, weights=weights)[0]
    if not (0 <= x <= width - w and 0 <= y <= height - h):
        raise InvalidRequestError(f"the region {w}x{h} at ({x}, {y}) is not inside the {width}x{height} photo; "
                                  f"x can be 0 to {width - w} and y 0 to {height - h}")
    return Box(x, y, w, h)


def _detail(photo: Image.Image, box: Box) -> float:
    """How much is going on in a region: the mean step in brightness between neighbouring pixels (a smooth
    gradient of sky scores near zero, where the spread of its brightness would not)."""
    luma = np.asarray(photo.crop(box.as_pil()).convert("L"), dtype=np.float32)
    return float(np.abs(np.diff(luma, axis=0)).sum() + np.abs(np.diff(luma, axis=1)).sum()) / luma.size
