"""The result encoder on its own (no web app): EXIF adjusted to a non-square result, profiles that fit the result's
colours, modes each format can hold, quality and PNG compression as asked, nothing carried from `image.info`."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

from app.jobs.output import (DEFAULT_QUALITY, OutputSpec, _colour_space, encode, exif_for, save, srgb_profile,
                             to_rgb, with_profile)
from app.jpeg_profile import JpegProfile
from tests.conftest import pattern

ICC = Path("/usr/share/color/icc/ghostscript")
ADOBE_RGB = (ICC / "a98.icc").read_bytes()
GRAY = (ICC / "default_gray.icc").read_bytes()
SWOP = (ICC / "default_cmyk.icc").read_bytes()
TAGS = ExifTags.Base


def camera_exif(width: int, height: int, *, sub_ifd: bool = True, orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[TAGS.Make], exif[TAGS.Orientation] = "Zeiss", orientation
    exif[TAGS.ImageWidth], exif[TAGS.ImageLength] = width, height
    if sub_ifd:
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        sub[TAGS.ExifImageWidth], sub[TAGS.ExifImageHeight] = width, height
    return exif.tobytes()


def tags(exif: Image.Exif) -> dict:
    """IFD0's tags, less the pointer to the Exif sub-IFD."""
    return {k: v for k, v in exif.items() if k != ExifTags.IFD.Exif}


def read_exif(data: bytes) -> Image.Exif:
    exif = Image.Exif()
    exif.load(data)
    return exif


@pytest.mark.parametrize("sub_ifd", [True, False])
def test_exif_for_a_non_square_result_says_its_width_and_height(sub_ifd):
    exif = read_exif(exif_for(camera_exif(160, 120, sub_ifd=sub_ifd), (300, 200)))
    assert (exif[TAGS.ImageWidth], exif[TAGS.ImageLength]) == (300, 200)
    assert exif[TAGS.Orientation] == 1 and exif[TAGS.Make] == "Zeiss"
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    assert ((sub[TAGS.ExifImageWidth], sub[TAGS.ExifImageHeight]) == (300, 200)) if sub_ifd else not sub


def test_exif_for_adds_no_tag_the_photo_did_not_have():
    plain = Image.Exif()
    plain[TAGS.Make] = "Zeiss"
    exif = read_exif(exif_for(plain.tobytes(), (300, 200)))
    # (Pillow writes a pointer to an empty Exif sub-IFD once it has been looked at; it holds nothing.)
    assert tags(exif) == {TAGS.Make: "Zeiss"} and not exif.get_ifd(ExifTags.IFD.Exif)
    only_height = Image.Exif()
    only_height[TAGS.ImageLength] = 120
    assert tags(read_exif(exif_for(only_height.tobytes(), (300, 200)))) == {TAGS.ImageLength: 200}
    only_width = Image.Exif()
    only_width.get_ifd(ExifTags.IFD.Exif)[TAGS.ExifImageWidth] = 160
    sub = read_exif(exif_for(only_width.tobytes(), (300, 200))).get_ifd(ExifTags.IFD.Exif)
    assert (sub[TAGS.ExifImageWidth], sub[TAGS.ExifImageHeight]) == (300, 200)


@pytest.mark.parametrize("exif", [None, b"", b"Exif\x00\x00not a tiff header"])
def test_exif_for_nothing_or_garbage_is_none(exif):
    assert exif_for(exif, (10, 10)) is None


def test_to_rgb_keeps_an_rgb_profile_and_converts_cmyk_through_its_own():
    rgb = Image.fromarray(pattern(12, 16))
    rgb.info["icc_profile"] = ADOBE_RGB
    assert to_rgb(rgb) == (rgb, ADOBE_RGB)
    rgb.info["icc_profile"] = b""
    assert to_rgb(rgb)[1] is None
    cmyk = rgb.convert("CMYK")
    cmyk.info["icc_profile"] = SWOP
    converted, icc = to_rgb(cmyk)
    assert converted.mode == "RGB" and icc == srgb_profile()
    cmyk.info["icc_profile"] = b"not a profile"
    converted, icc = to_rgb(cmyk)
    assert converted.mode == "RGB" and icc is None
    gray = rgb.convert("L")
    gray.info["icc_profile"] = GRAY
    converted, icc = to_rgb(gray)
    assert converted.mode == "RGB" and icc is None


def test_with_profile_keeps_a_profile_only_on_the_colours_it_describes():
    def tagged(mode: str, icc: bytes) -> Image.Image:
        image = Image.new(mode, (4, 4))
        image.info["icc_profile"] = icc
        return image

    assert with_profile(tagged("RGB", ADOBE_RGB))[1] == ADOBE_RGB
    assert with_profile(tagged("RGBA", ADOBE_RGB))[1] == ADOBE_RGB
    assert with_profile(tagged("L", GRAY))[1] == GRAY
    assert with_profile(tagged("LA", GRAY))[1] == GRAY
    assert with_profile(tagged("RGB", GRAY))[1] is None
    assert with_profile(tagged("L", ADOBE_RGB))[1] is None
    assert with_profile(tagged("RGB", b""))[1] is None
    # A profile that cannot be read is passed on as it was: the pixels are still in it.
    assert with_profile(tagged("RGB", b"unreadable"))[1] == b"unreadable"
    image, icc = with_profile(tagged("CMYK", SWOP))
    assert image.mode == "RGB" and icc == srgb_profile()


def test_colour_space_names_what_a_profile_describes():
    assert [_colour_space(p) for p in (ADOBE_RGB, GRAY, SWOP, b"junk")] == ["RGB", "GRAY", "CMYK", None]


def written(image: Image.Image, name: str, **kwargs) -> Image.Image:
    buffer = io.BytesIO()
    save(image, buffer, name, **kwargs)
    result = Image.open(io.BytesIO(buffer.getvalue()))
    result.load()
    return result


@pytest.mark.parametrize("mode, expected", [("RGBA", "RGB"), ("LA", "L"), ("P", "RGB"), ("L", "L"), ("RGB", "RGB")])
def test_a_jpeg_gets_the_colour_alone_and_png_keeps_alpha(mode, expected):
    image = Image.fromarray(pattern(12, 16)).convert(mode)
    assert written(image, "JPEG").mode == expected
    assert written(image, "PNG").mode == mode


def test_nothing_is_carried_from_image_info():
    image = Image.fromarray(pattern(12, 16))
    image.info.update(icc_profile=ADOBE_RGB, exif=camera_exif(16, 12))
    for name in ("PNG", "JPEG", "WEBP"):
        result = written(image, name)
        assert "icc_profile" not in result.info and not result.getexif(), name
    tagged = written(image, "PNG", icc=ADOBE_RGB, exif=camera_exif(8, 6))
    assert tagged.info["icc_profile"] == ADOBE_RGB and tagged.getexif()[TAGS.ImageWidth] == 16


def test_jpeg_and_webp_are_written_at_the_quality_asked():
    image = Image.fromarray(pattern(48, 64))
    for quality in (35, DEFAULT_QUALITY):
        data = io.BytesIO()
        save(image, data, "JPEG", quality)
        assert JpegProfile.read(data.getvalue()).quality == quality
    assert JpegProfile.read(encode(image, OutputSpec("jpeg"))).quality == DEFAULT_QUALITY
    sizes = []
    for quality in (20, 95):
        data = io.BytesIO()
        save(image, data, "WEBP", quality)
        sizes.append(len(data.getvalue()))
    assert sizes[0] < sizes[1]


def zlib_level_flag(png: bytes) -> int:
    """FLEVEL of the first IDAT's zlib header: 0 fastest, 1 fast (levels 2-5), 2 default (6), 3 best (7-9)."""
    at = 8
    while True:
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        if kind == b"IDAT":
            return png[at + 9] >> 6
        at += 12 + length


def test_png_is_written_with_fast_compression():
    data = encode(Image.fromarray(pattern(48, 64)), OutputSpec("png"))
    assert zlib_level_flag(data) == 1


def test_encode_writes_the_spec_and_leaves_exif_out_when_asked():
    image = Image.fromarray(pattern(12, 16))
    spec = OutputSpec("webp", 80, ADOBE_RGB, camera_exif(8, 6))
    result = Image.open(io.BytesIO(encode(image, spec)))
    assert result.format == "WEBP" and result.info["icc_profile"] == ADOBE_RGB
    assert result.getexif()[TAGS.ImageWidth] == 16
    bare = Image.open(io.BytesIO(encode(image, spec, with_exif=False)))
    assert bare.info["icc_profile"] == ADOBE_RGB and not bare.getexif()
    assert (spec.mimetype, spec.extension) == ("image/webp", "webp")
    assert (OutputSpec("jpeg").mimetype, OutputSpec("jpeg").extension) == ("image/jpeg", "jpg")
    assert (OutputSpec().format, OutputSpec().quality) == ("png", DEFAULT_QUALITY)
    assert np.asarray(Image.open(io.BytesIO(encode(image, OutputSpec())))).shape == (12, 16, 3)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"])
def test_every_gray_mode_keeps_a_gray_profile_and_drops_a_colour_one(mode):
    image = Image.new(mode, (4, 4))
    image.info["icc_profile"] = GRAY
    assert with_profile(image)[1] == GRAY
    image.info["icc_profile"] = ADOBE_RGB
    assert with_profile(image)[1] is None
