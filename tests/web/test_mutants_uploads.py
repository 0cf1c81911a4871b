"""Reading uploads at the edges mutation testing found loose: each refusal's exact message and log line, the pixel
limit itself allowed, a gray photo's gray profile dropped, the crop's bounds at 0 and at the far edge, and how a
region's detail is measured and weighted."""

from __future__ import annotations

import io
import logging
import random
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from app.config import ServiceConfig
from app.errors import BadImageError, ImageTooLargeError, InvalidRequestError, NotJPEGError, ZSSRError
from app.jobs import Box
from app.web import uploads
from app.web.uploads import _detail, choose_crop, read_photo
from test_uploads import with_size_in_header
from websupport import jpeg_bytes, make_photo

SERVICE = ServiceConfig()
GRAY_ICC = (Path("/usr/share/color/icc/ghostscript") / "default_gray.icc").read_bytes()


def refusal(data: bytes, service: ServiceConfig = SERVICE) -> ZSSRError:
    with pytest.raises(ZSSRError) as caught:
        read_photo(data, service)
    return caught.value


def test_refusals_say_exactly_what_is_wrong():
    padded = jpeg_bytes(64, 48) + bytes(1_500_000)
    too_big = refusal(padded[:1_500_000], ServiceConfig(max_MB=1.0))
    assert type(too_big) is ImageTooLargeError and str(too_big) == "the file is 1.5 MB; at most 1 MB is accepted"
    empty = refusal(b"")
    assert type(empty) is InvalidRequestError and str(empty) == "the uploaded file is empty"
    text = refusal(b"GIF89a, not a photo")
    assert type(text) is NotJPEGError and str(text) == "the file is not a JPEG photo; please upload a .jpg"
    many = refusal(jpeg_bytes(200, 150), ServiceConfig(max_pixels=29_999))
    assert str(many) == "the photo is 200x150 pixels; at most 29,999 pixels are accepted"
    # Past twice Pillow's own bomb limit the header is refused while opening.
    bomb = refusal(with_size_in_header(jpeg_bytes(64, 64), 20_000, 20_000), ServiceConfig(max_pixels=1_000_000))
    assert type(bomb) is ImageTooLargeError
    assert str(bomb) == "the photo has too many pixels; at most 1,000,000 are accepted"


def test_a_photo_of_exactly_max_pixels_is_read():
    assert read_photo(jpeg_bytes(200, 150), ServiceConfig(max_pixels=30_000)).size == (200, 150)


def test_an_unreadable_header_is_refused_and_logged_with_pillows_reason(caplog):
    data = b"\xff\xd8\xff" + bytes(range(256)) * 20
    with pytest.raises(OSError) as pillow:
        Image.open(io.BytesIO(data), formats=["JPEG"])
    with caplog.at_level(logging.INFO, logger="app.web.uploads"):
        error = refusal(data)
    assert type(error) is BadImageError
    assert str(error) == "the file starts like a JPEG but cannot be read; it may be truncated or corrupt"
    # Pillow's reason names the stream object, whose address differs between the two opens.
    reason = str(pillow.value).split(" <")[0]
    (record,) = caplog.records
    assert record.getMessage().startswith(f"unreadable JPEG header: {reason} <_io.BytesIO object at ")


def test_truncated_pixels_are_refused_and_logged_with_pillows_reason(caplog):
    data = jpeg_bytes(200, 150, quality=95)
    data = data[: int(len(data) * 0.9)]
    with pytest.raises(OSError) as pillow:
        Image.open(io.BytesIO(data), formats=["JPEG"]).load()
    with caplog.at_level(logging.INFO, logger="app.web.uploads"):
        error = refusal(data)
    assert type(error) is BadImageError
    assert str(error) == "the JPEG is truncated or corrupt; please upload the whole file"
    assert [r.getMessage() for r in caplog.records] == [f"unreadable JPEG: {pillow.value}"]


def test_a_broken_exif_orientation_is_logged_and_ignored(monkeypatch, caplog):
    def broken(image):
        raise ValueError("no such orientation")

    monkeypatch.setattr(ImageOps, "exif_transpose", broken)
    with caplog.at_level(logging.INFO, logger="app.web.uploads"):
        photo = read_photo(jpeg_bytes(40, 20, orientation=6), SERVICE)
    assert photo.size == (40, 20)
    assert [r.getMessage() for r in caplog.records] == ["EXIF orientation ignored: no such orientation"]


def test_a_gray_photos_gray_profile_is_not_kept_on_its_rgb_pixels():
    buffer = io.BytesIO()
    make_photo(64, 48).convert("L").save(buffer, format="JPEG", icc_profile=GRAY_ICC)
    photo = read_photo(buffer.getvalue(), SERVICE)
    assert photo.mode == "RGB" and "icc_profile" not in photo.info


def test_a_chosen_crop_may_touch_every_edge_and_no_further():
    photo = Image.new("RGB", (300, 200))
    for x, y in ((0, 0), (0, 136), (236, 0), (236, 136)):
        assert choose_crop(photo, 64, x, y, None) == Box(x, y, 64, 64)
    for x, y in ((-1, 0), (0, -1), (237, 0), (0, 137)):
        with pytest.raises(InvalidRequestError) as caught:
            choose_crop(photo, 64, x, y, None)
        assert str(caught.value) == (f"the region 64x64 at ({x}, {y}) is not inside the 300x200 photo; "
                                     "x can be 0 to 236 and y 0 to 136")
    with pytest.raises(InvalidRequestError) as caught:
        choose_crop(photo, 64, None, 5, None)
    assert str(caught.value) == "give both x and y, or neither for a random region"


def stripes(vertical: bool) -> Image.Image:
    """16 x 16 of alternating red and blue lines: columns when `vertical`, rows otherwise."""
    photo = Image.new("RGB", (16, 16), (255, 0, 0))
    for i in range(1, 16, 2):
        photo.paste((0, 0, 255), (i, 0, i + 1, 16) if vertical else (0, i, 16, i + 1))
    return photo


def test_detail_is_the_mean_brightness_step_between_neighbours_either_way():
    # Red and blue differ by 76 - 29 = 47 in luma (not by their channels' 255s); 15 steps across each of 16 lines,
    # over 256 pixels.
    box = Box(0, 0, 16, 16)
    expected = 47 * 15 * 16 / 256
    assert _detail(stripes(vertical=True), box) == pytest.approx(expected)
    assert _detail(stripes(vertical=False), box) == pytest.approx(expected)
    assert _detail(stripes(vertical=True), Box(0, 0, 8, 4)) == pytest.approx(47 * 7 * 4 / 32)


def test_a_random_regions_weight_is_its_detail_squared(monkeypatch):
    seen = []
    choices = random.Random.choices

    def recording(self, population, weights=None, **kwargs):
        seen.append((list(population), list(weights)))
        return choices(self, population, weights=weights, **kwargs)

    monkeypatch.setattr(random.Random, "choices", recording)
    photo = make_photo(200, 120)
    box = choose_crop(photo, 64, None, None, 3)
    (candidates, weights), = seen
    assert len(candidates) == uploads.RANDOM_CANDIDATES and box in candidates
    assert weights == pytest.approx([_detail(photo, c) ** 2 for c in candidates])
