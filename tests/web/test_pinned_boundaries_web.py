"""One-line slips at boundaries that the rest of the suite let through (issue 20), each pinned by an assertion: a
photo of exactly `max_pixels` pixels, the API key compared in constant time, and a non-square result's EXIF size."""

from __future__ import annotations

import hmac
import io

import pytest
from PIL import ExifTags, Image

from app.config import ServiceConfig, load_settings
from app.errors import ImageTooLargeError
from app.jobs.output import OutputSpec, encode, exif_for
from app.web import close_app, create_app
from app.web.access import key_digest
from app.web.uploads import read_photo
from websupport import TINY, jpeg_bytes, make_photo

TAGS = ExifTags.Base


@pytest.mark.parametrize("width, height", [(200, 150), (17, 301), (64, 64)])
def test_a_photo_of_exactly_max_pixels_is_accepted(width, height):
    data = jpeg_bytes(width, height)
    assert read_photo(data, ServiceConfig(max_pixels=width * height)).size == (width, height)
    with pytest.raises(ImageTooLargeError, match=f"at most {width * height - 1:,} pixels"):
        read_photo(data, ServiceConfig(max_pixels=width * height - 1))


@pytest.fixture
def keyed_app():
    keys = ("first-key-0123456789", "second-key-0123456789", "third-key-0123456789")
    app = create_app(load_settings(overrides={**TINY, "api_keys": [key_digest(k) for k in keys]}))
    try:
        yield app, keys
    finally:
        close_app(app)


def test_the_api_key_is_compared_in_constant_time_against_every_digest(keyed_app, monkeypatch):
    app, keys = keyed_app
    digests = [key_digest(k).encode("ascii") for k in keys]
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    client = app.test_client()
    # A key that matches the first digest: compared with every digest all the same (no early exit), and only
    # through compare_digest (an == would stop at the first differing byte).
    accepted = client.get("/api/jobs/no-such-job", headers={"Authorization": f"Bearer {keys[0]}"})
    assert accepted.status_code == 404, accepted.get_json()  # past the key check: the job is unknown
    assert calls == [(digests[0], d) for d in digests]
    calls.clear()
    refused = client.get("/api/jobs/no-such-job", headers={"Authorization": "Bearer not-a-key"})
    assert refused.status_code == 403
    wrong = key_digest("not-a-key").encode("ascii")
    assert calls == [(wrong, d) for d in digests]


def camera_exif(width: int, height: int) -> bytes:
    """EXIF as a camera writes it: the size in IFD0 and in the Exif IFD, and an orientation."""
    exif = Image.Exif()
    exif[TAGS.Make], exif[TAGS.Orientation] = "Zeiss", 6
    exif[TAGS.ImageWidth], exif[TAGS.ImageLength] = width, height
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[TAGS.ExifImageWidth], sub[TAGS.ExifImageHeight] = width, height
    return exif.tobytes()


def sizes(exif: Image.Exif) -> tuple[tuple[int, int], tuple[int, int]]:
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    return (exif[TAGS.ImageWidth], exif[TAGS.ImageLength]), (sub[TAGS.ExifImageWidth], sub[TAGS.ExifImageHeight])


@pytest.mark.parametrize("size", [(96, 40), (40, 96)])
def test_a_non_square_result_s_exif_gives_width_and_height_the_right_way_round(size):
    written = Image.Exif()
    written.load(exif_for(camera_exif(60, 45), size))
    assert sizes(written) == (size, size)
    # And in the file that is sent: the EXIF agrees with the picture's own size.
    for fmt in ("png", "jpeg", "webp"):
        data = encode(make_photo(*size), OutputSpec(format=fmt, exif=camera_exif(60, 45)))
        result = Image.open(io.BytesIO(data))
        assert result.size == size
        assert sizes(result.getexif()) == (size, size), fmt
