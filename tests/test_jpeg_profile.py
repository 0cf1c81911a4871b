"""The JPEG profile reader at its edges: libjpeg's tables at every quality, the quality estimate's ties, samplings
Pillow cannot name, grayscale encoding with one table, records from before `grayscale`, and non-JPEG images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.jpeg_profile import JpegProfile, ijg_table
from tests.conftest import pattern


def test_ijg_table_is_libjpegs_at_every_quality():
    # Pillow's libjpeg scales its tables the same way; covers the q < 50 branch, q = 50, the rounding and both
    # clamps (quality 1 saturates at 255, quality 100 floors at 1).
    for quality in range(1, 101):
        written = JpegProfile.standard(quality)
        assert written.qtables[0] == tuple(int(v) for v in ijg_table(quality)), quality
        assert written.quality == quality
    assert set(ijg_table(1)) == {255} and set(ijg_table(100)) == {1}


def profile_of(luma: np.ndarray, chroma: np.ndarray | None = None) -> JpegProfile:
    """The profile read back from an image written with these tables (natural order)."""
    tables = [list(map(int, luma))] + ([list(map(int, chroma))] if chroma is not None else [])
    buffer = io.BytesIO()
    Image.fromarray(pattern(16, 16)).save(buffer, format="JPEG", qtables=tables, subsampling=0)
    return JpegProfile.read(buffer.getvalue())


def test_a_camera_table_gets_the_nearest_quality_and_a_tie_the_higher():
    low, high = ijg_table(60), ijg_table(61)
    luma = low.copy()
    for i in np.flatnonzero(low != high):
        luma[i] = high[i]
        if np.abs(luma - low).sum() == np.abs(luma - high).sum():
            break
    assert np.abs(luma - low).sum() == np.abs(luma - high).sum() > 0
    assert profile_of(luma).quality == 61
    assert profile_of(low).quality == 60 and profile_of(ijg_table(2)).quality == 2


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_samplings_pillow_does_not_name_are_written_as_4_2_0(mode):
    buffer = io.BytesIO()
    Image.fromarray(pattern(16, 16)).convert(mode).save(buffer, format="JPEG", quality=80)
    profile = JpegProfile.read(buffer.getvalue())
    assert profile.subsampling == 2 and profile.quality == 80


def test_a_grayscale_encoding_writes_only_the_luma_table():
    profile = JpegProfile((tuple(ijg_table(30)), tuple(ijg_table(90))), 0, 30)
    for pixels in (pattern(16, 16)[:, :, 0], pattern(16, 16)):
        grey = JpegProfile(profile.qtables, 0, 30, grayscale=True)
        written = JpegProfile.read(grey.encode(pixels))
        assert written.qtables == (profile.qtables[0],) and written.grayscale
    assert JpegProfile.read(profile.encode(pattern(16, 16))).qtables == profile.qtables


def test_a_record_from_before_grayscale_reads_as_colour():
    record = {"qtables": [list(ijg_table(70))], "subsampling": 1, "quality": 70}
    assert JpegProfile.from_dict(record) == JpegProfile((tuple(int(v) for v in ijg_table(70)),), 1, 70, False)


def test_from_image_of_an_image_not_read_from_a_jpeg_is_none():
    buffer = io.BytesIO()
    Image.fromarray(pattern(8, 8)).save(buffer, format="PNG")
    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        assert JpegProfile.from_image(image) is None
    assert JpegProfile.from_image(Image.new("RGB", (8, 8))) is None
