"""Property-based tests of the upload limits at their exact boundaries (max_MB in bytes, max_pixels, min_side) and
of where a chosen or random region may lie in the photo.

HYPOTHESIS_PROFILE picks how many examples (tests/conftest.py): few and fixed by default, many with `dev`.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, strategies as st
from PIL import Image

from app.config import ServiceConfig
from app.errors import ImageTooLargeError, ImageTooSmallError, InvalidRequestError
from app.jobs import Box
from app.web.uploads import choose_crop, read_photo
from websupport import jpeg_bytes

SMALL_JPEG = jpeg_bytes(24, 20)


@given(size=st.integers(len(SMALL_JPEG), 300_000))
@example(size=1_956).via("size / 1e6 * 1e6 is 1955.9999999999998: int() would cut the limit a byte short")
@example(size=250_001).via("likewise (250000.99999999997)")
def test_a_file_of_exactly_max_mb_is_accepted_and_one_byte_more_refused(size):
    # A real JPEG padded after its end marker to `size` bytes; max_MB is decimal megabytes, to the byte.
    data = SMALL_JPEG + bytes(size - len(SMALL_JPEG))
    limit = ServiceConfig(max_MB=size / 1e6)
    assert read_photo(data, limit).size == (24, 20)
    with pytest.raises(ImageTooLargeError, match="MB"):
        read_photo(data + b"\0", limit)


@given(width=st.integers(16, 90), height=st.integers(16, 90))
def test_a_photo_of_exactly_max_pixels_is_accepted_and_refused_by_a_limit_one_pixel_lower(width, height):
    data = jpeg_bytes(width, height, quality=50)
    assert read_photo(data, ServiceConfig(max_pixels=width * height)).size == (width, height)
    with pytest.raises(ImageTooLargeError, match="pixels"):
        read_photo(data, ServiceConfig(max_pixels=width * height - 1))


@given(width=st.integers(4, 60), height=st.integers(4, 60))
def test_a_photo_whose_short_side_is_exactly_min_side_is_accepted_and_one_pixel_shorter_refused(width, height):
    data = jpeg_bytes(width, height, quality=50)
    short = min(width, height)
    assert read_photo(data, ServiceConfig(min_side=short)).size == (width, height)
    with pytest.raises(ImageTooSmallError, match=f"at least {short + 1} pixels"):
        read_photo(data, ServiceConfig(min_side=short + 1))


def flat_photo(width: int, height: int) -> Image.Image:
    """A flat photo: no region more detailed than another, so every place is as likely for a random region."""
    return Image.new("RGB", (width, height), (90, 120, 150))


@given(width=st.integers(1, 60), height=st.integers(1, 60), crop=st.integers(1, 70), x=st.integers(-3, 65),
       y=st.integers(-3, 65))
def test_a_chosen_region_is_accepted_exactly_when_it_lies_inside_the_photo(width, height, crop, x, y):
    w, h = min(crop, width), min(crop, height)
    photo = flat_photo(width, height)
    if 0 <= x <= width - w and 0 <= y <= height - h:
        assert choose_crop(photo, crop, x, y, seed=None) == Box(x, y, w, h)
    else:
        with pytest.raises(InvalidRequestError, match=f"x can be 0 to {width - w} and y 0 to {height - h}"):
            choose_crop(photo, crop, x, y, seed=None)


@given(width=st.integers(1, 10), height=st.integers(1, 10), crop=st.integers(1, 12))
def test_a_random_region_lies_inside_the_photo_and_can_be_anywhere(width, height, crop):
    w, h = min(crop, width), min(crop, height)
    photo = flat_photo(width, height)
    spans = (width - w + 1, height - h + 1)
    boxes = [choose_crop(photo, crop, None, None, seed) for seed in range(15 * max(spans))]
    assert {(box.width, box.height) for box in boxes} == {(w, h)}
    assert {box.x for box in boxes} == set(range(spans[0]))
    assert {box.y for box in boxes} == set(range(spans[1]))
    # The same seed, the same region.
    assert choose_crop(photo, crop, None, None, 7) == boxes[7]
