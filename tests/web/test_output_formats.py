"""Output formats (png, webp, jpeg with quality) and the photo's metadata kept: its ICC profile (Adobe RGB stays
Adobe RGB; CMYK converted through its own profile) and its EXIF (upright, the new size, no thumbnail); file
names that say what the file is. On both job backends."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms

from app.config import ServiceConfig
from app.jobs.output import srgb_profile
from app.web.uploads import read_photo
from websupport import jpeg_bytes, make_photo

# From Debian's libgs-common (.ci/run installs it): an Adobe RGB (1998) profile and a CMYK (SWOP) one.
ICC = Path("/usr/share/color/icc/ghostscript")
ADOBE_RGB = (ICC / "a98.icc").read_bytes()
SWOP = (ICC / "default_cmyk.icc").read_bytes()
TAGS = ExifTags.Base


def tagged_jpeg(icc: bytes | None, orientation: int = 6) -> bytes:
    """A 160x120 (stored) photo with an EXIF block that a camera would write, rotated by `orientation`."""
    exif = Image.Exif()
    exif[TAGS.Make], exif[TAGS.Model], exif[TAGS.Orientation] = "Zeiss", "Ikon 1", orientation
    exif[TAGS.ImageWidth], exif[TAGS.ImageLength] = 160, 120
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[TAGS.DateTimeOriginal] = "2026:11:27 10:00:00"
    sub[TAGS.ExifImageWidth], sub[TAGS.ExifImageHeight] = 160, 120
    buffer = io.BytesIO()
    make_photo(160, 120).save(buffer, format="JPEG", quality=90, exif=exif, **({"icc_profile": icc} if icc else {}))
    return buffer.getvalue()


def post(client, data: bytes, filename: str = "holiday.jpg", **fields):
    form = {"image": (io.BytesIO(data), filename, "image/jpeg"), "crop": "48", "x": "10", "y": "20",
            **{k: str(v) for k, v in fields.items()}}
    return client.post("/upscale", data=form, content_type="multipart/form-data")


@pytest.mark.parametrize("fmt, pil_format, ext", [("png", "PNG", "png"), ("webp", "WEBP", "webp"),
                                                  ("jpeg", "JPEG", "jpg"), ("jpg", "JPEG", "jpg")])
def test_the_profile_and_exif_survive_in_each_format(make_app, fmt, pil_format, ext):
    client = make_app(base64=False).test_client()
    response = post(client, tagged_jpeg(ADOBE_RGB), format=fmt, quality=80)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["format"] == ("jpeg" if fmt == "jpg" else fmt) and body["url"].endswith(f"/result.{ext}")
    image_response = client.get(body["url"] + "?download=1")
    assert image_response.status_code == 200 and image_response.mimetype == f"image/{pil_format.lower()}"
    assert image_response.headers["Content-Disposition"] == \
        f'attachment; filename="holiday-x10-y20-48x48-8x.{ext}"'
    result = Image.open(io.BytesIO(image_response.data))
    assert result.format == pil_format and result.size == (384, 384)
    assert result.info["icc_profile"] == ADOBE_RGB  # tagged Adobe RGB, not shown as sRGB
    exif = result.getexif()
    assert (exif[TAGS.Make], exif[TAGS.Model]) == ("Zeiss", "Ikon 1")
    assert exif[TAGS.Orientation] == 1  # the pixels are upright already
    assert (exif[TAGS.ImageWidth], exif[TAGS.ImageLength]) == (384, 384)
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    assert sub[TAGS.DateTimeOriginal] == "2026:11:27 10:00:00"
    assert (sub[TAGS.ExifImageWidth], sub[TAGS.ExifImageHeight]) == (384, 384)
    assert not exif.get_ifd(ExifTags.IFD.IFD1)  # no thumbnail of the small original
    # The comparison image is PNG in the same profile, without EXIF.
    bicubic = client.get(body["bicubic"])
    assert bicubic.headers["Content-Disposition"] == 'inline; filename="holiday-x10-y20-48x48-8x-bicubic.png"'
    bicubic_image = Image.open(io.BytesIO(bicubic.data))
    assert bicubic_image.format == "PNG" and bicubic_image.info["icc_profile"] == ADOBE_RGB
    assert not bicubic_image.getexif()


def test_the_photo_is_upright_before_the_region_is_cut(make_app):
    # Orientation 6 (rotate 90 clockwise to view): stored 160x120, seen 120x160.
    body = post(make_app().test_client(), tagged_jpeg(None), crop=48).get_json()
    assert (body["photo"]["width"], body["photo"]["height"]) == (120, 160)


def test_quality_changes_the_jpeg(make_app):
    client = make_app(base64=False).test_client()
    sizes = []
    for quality in (30, 95):
        body = post(client, tagged_jpeg(None), format="jpeg", quality=quality).get_json()
        sizes.append(len(client.get(body["url"]).data))
    assert sizes[0] < sizes[1]


def test_an_untagged_photo_gives_an_untagged_result(make_app):
    client = make_app(base64=False).test_client()
    body = post(client, jpeg_bytes(160, 120), format="webp").get_json()
    result = Image.open(io.BytesIO(client.get(body["url"]).data))
    assert "icc_profile" not in result.info and not result.getexif()


def test_a_cmyk_photo_is_converted_through_its_own_profile():
    cmyk = Image.merge("CMYK", [Image.fromarray(np.asarray(make_photo(64, 48))[..., i]) for i in (0, 1, 2)]
                       + [Image.new("L", (64, 48), 30)])
    buffer = io.BytesIO()
    cmyk.save(buffer, format="JPEG", quality=95, icc_profile=SWOP)
    photo = read_photo(buffer.getvalue(), ServiceConfig())
    assert photo.mode == "RGB" and photo.info["icc_profile"] == srgb_profile()
    decoded = Image.open(io.BytesIO(buffer.getvalue()))
    expected = ImageCms.profileToProfile(decoded, ImageCms.ImageCmsProfile(io.BytesIO(SWOP)),
                                         ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")), outputMode="RGB")
    np.testing.assert_array_equal(np.asarray(photo), np.asarray(expected))
    naive = np.asarray(decoded.convert("RGB")).astype(int)
    assert np.abs(np.asarray(photo).astype(int) - naive).mean() > 5  # the naive formula is far off


def test_a_cmyk_photo_without_a_profile_still_works(make_app):
    buffer = io.BytesIO()
    make_photo(64, 48).convert("CMYK").save(buffer, format="JPEG", quality=95)
    photo = read_photo(buffer.getvalue(), ServiceConfig())
    assert photo.mode == "RGB" and "icc_profile" not in photo.info


@pytest.mark.parametrize("fields, message", [({"format": "gif"}, "format"), ({"quality": "0"}, "quality"),
                                             ({"quality": "101"}, "quality"), ({"quality": "high"}, "quality")])
def test_bad_format_fields_are_400(make_app, fields, message):
    response = post(make_app().test_client(), jpeg_bytes(160, 120), **fields)
    assert response.status_code == 400 and message in response.get_json()["message"]


def test_a_result_asked_by_another_extension_is_404_naming_the_right_one(make_app):
    client = make_app(base64=False).test_client()
    body = post(client, jpeg_bytes(160, 120), format="webp").get_json()
    wrong = client.get(f"/api/jobs/{body['id']}/result.png")
    assert wrong.status_code == 404 and body["url"] in wrong.get_json()["message"]


@pytest.mark.parametrize("filename, stem", [("../../etc/pass wd.jpg", "pass_wd"), ("", "photo"), ("...jpg", "photo"),
                                            ("photos/Été à midi.JPG", "Ete_a_midi")])
def test_download_names_are_safe(make_app, filename, stem):
    client = make_app(base64=False).test_client()
    body = post(client, jpeg_bytes(160, 120), filename=filename).get_json()
    disposition = client.get(body["url"]).headers["Content-Disposition"]
    assert disposition == f'inline; filename="{stem}-x10-y20-48x48-8x.png"'
