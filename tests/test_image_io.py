"""Images in and out of the engine (app/engine/image_io.py): files read upright and written whole, every common
PIL mode split into colour and alpha planes and back, luma and the centre crop."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from app.engine.image_io import centre_crop, from_planes, load_image, luma, save_image, to_planes, to_uint8
from app.errors import BadImageError
from tests.conftest import pattern


def test_a_file_is_read_whole_and_upright(tmp_path):
    stored = Image.fromarray(pattern(14, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter clockwise
    path = tmp_path / "camera.jpg"
    stored.save(path, quality=100, subsampling=0, exif=exif)
    image = load_image(path)
    path.unlink()  # decoded already: nothing is read from the file later
    assert image.size == (14, 20)
    read = np.asarray(image, dtype=np.int16)
    upright = np.asarray(stored.transpose(Image.Transpose.ROTATE_270), dtype=np.int16)
    upside_down = np.asarray(stored.transpose(Image.Transpose.ROTATE_90), dtype=np.int16)
    assert np.abs(read - upright).mean() < 3 < np.abs(read - upside_down).mean()


def test_a_missing_file_and_one_that_is_not_an_image_say_which(tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(BadImageError, match="image not found") as caught:
        load_image(missing)
    assert str(missing) in str(caught.value)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(BadImageError, match="cannot decode image") as caught:
        load_image(junk)
    assert str(junk) in str(caught.value)
    truncated = tmp_path / "cut.png"
    Image.fromarray(pattern(32, 32)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:120])
    with pytest.raises(BadImageError, match="cannot decode image"):
        load_image(truncated)


@pytest.mark.parametrize("name, fmt", [("out.png", "PNG"), ("OUT.PNG", "PNG"), ("deep/er/out.webp", "WEBP"),
                                       ("out.Jpg", "JPEG")])
def test_saving_writes_the_extensions_format_and_nothing_else(tmp_path, name, fmt):
    path = tmp_path / name
    save_image(Image.fromarray(pattern(12, 16)), path)
    with Image.open(path) as written:
        assert written.format == fmt and written.size == (16, 12)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_the_temporary_file_is_hidden_beside_the_output_until_renamed(tmp_path, monkeypatch):
    # Beside it, so that the rename is atomic (one file system); hidden, so that a folder listing (the CLI's
    # batch mode skips dot files) never picks up a half-written image.
    renamed = []
    real_replace = os.replace

    def replace(source, target):
        renamed.append((Path(source), Path(target)))
        assert Path(source).exists() and not Path(target).exists()
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    path = tmp_path / "out" / "result.png"
    save_image(Image.fromarray(pattern(12, 16)), path)
    ((source, target),) = renamed
    assert target == path and source.parent == path.parent and source.name.startswith(".")
    assert not source.exists() and path.exists()


def test_saving_to_an_unknown_type_writes_nothing(tmp_path):
    with pytest.raises(BadImageError, match=r"\.xyz"):
        save_image(Image.fromarray(pattern(12, 16)), tmp_path / "out.xyz")
    with pytest.raises(BadImageError, match="noextension"):
        save_image(Image.fromarray(pattern(12, 16)), tmp_path / "noextension")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_save_leaves_neither_the_file_nor_its_temporary(tmp_path):
    path = tmp_path / "out.jpg"
    path.write_bytes(b"the previous result")
    with pytest.raises(OSError):
        save_image(Image.new("RGBA", (8, 8)), path)  # JPEG has no alpha
    assert [p.name for p in tmp_path.iterdir()] == ["out.jpg"] and path.read_bytes() == b"the previous result"


def test_rgb_planes_are_scaled_to_one_and_come_back_exactly():
    array = pattern(6, 9)
    planes = to_planes(Image.fromarray(array))
    assert planes.colour.shape == (1, 3, 6, 9) and planes.colour.dtype == torch.float32
    assert planes.alpha is None and not planes.grayscale
    assert torch.equal(planes.colour[0, 1], torch.from_numpy(array[:, :, 1] / np.float32(255)))
    assert np.array_equal(np.asarray(from_planes(planes.colour, planes.alpha)), array)


@pytest.mark.parametrize("mode", ["L", "1"])
def test_gray_images_are_one_plane(mode):
    image = Image.fromarray(pattern(6, 9)[:, :, 0]).convert(mode)
    planes = to_planes(image)
    assert planes.colour.shape == (1, 1, 6, 9) and planes.grayscale and planes.alpha is None
    back = from_planes(planes.colour, None)
    assert back.mode == "L" and np.array_equal(np.asarray(back), np.asarray(image.convert("L")))


def test_a_float_image_is_gray():
    image = Image.fromarray(np.full((4, 5), 128.0, dtype=np.float32), "F")
    planes = to_planes(image)
    assert planes.grayscale and planes.colour.shape == (1, 1, 4, 5)
    assert torch.allclose(planes.colour, torch.full((1, 1, 4, 5), 128 / 255))


@pytest.mark.parametrize("mode, byte_order", [("I;16", "<"), ("I;16L", "<"), ("I;16B", ">")])
def test_sixteen_bit_gray_is_scaled_by_its_own_range(mode, byte_order):
    values = np.array([0, 32768, 65535], dtype=byte_order + "u2")
    planes = to_planes(Image.frombytes(mode, (3, 1), values.tobytes()))
    assert planes.grayscale and planes.alpha is None
    assert planes.colour.shape == (1, 1, 1, 3) and planes.colour.dtype == torch.float32
    assert planes.colour[0, 0, 0].tolist() == pytest.approx([0.0, 32768 / 65535, 1.0])


def test_a_32_bit_integer_image_is_read_as_eight_bit_values_and_clipped():
    array = np.array([[0, 51, 255, 1000, -5]], dtype=np.int32)
    planes = to_planes(Image.fromarray(array, "I"))
    assert planes.grayscale and planes.colour.dtype == torch.float32
    assert planes.colour[0, 0, 0].tolist() == pytest.approx([0.0, 0.2, 1.0, 1.0, 0.0])


@pytest.mark.parametrize("mode, colour_planes, back_mode", [("RGBA", 3, "RGBA"), ("LA", 1, "LA")])
def test_alpha_is_its_own_plane(mode, colour_planes, back_mode):
    rgb = pattern(6, 9)
    alpha = np.linspace(0, 255, 54).reshape(6, 9).round().astype(np.uint8)
    image = Image.fromarray(np.dstack([rgb, alpha])).convert(mode) if mode == "RGBA" else \
        Image.fromarray(np.dstack([rgb[:, :, 0], alpha]), "LA")
    planes = to_planes(image)
    assert planes.colour.shape == (1, colour_planes, 6, 9) and planes.alpha.shape == (1, 1, 6, 9)
    assert planes.grayscale is (colour_planes == 1)
    assert torch.equal(planes.alpha[0, 0], torch.from_numpy(alpha / np.float32(255)))
    back = from_planes(planes.colour, planes.alpha)
    assert back.mode == back_mode and np.array_equal(np.asarray(back), np.asarray(image))


def test_a_palette_image_keeps_its_transparency_as_alpha():
    palette = Image.fromarray(pattern(6, 9)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    plain = to_planes(palette)
    assert plain.alpha is None and plain.colour.shape == (1, 3, 6, 9) and not plain.grayscale
    palette.info["transparency"] = int(np.asarray(palette)[0, 0])
    planes = to_planes(palette)
    assert planes.alpha is not None and float(planes.alpha[0, 0, 0, 0]) == 0.0
    assert float(planes.alpha.max()) == 1.0 and planes.colour.shape == (1, 3, 6, 9)
    assert torch.equal(planes.colour, plain.colour)


def test_a_palette_image_with_alpha_in_its_palette_keeps_it():
    image = Image.new("PA", (3, 2))
    planes = to_planes(image)
    assert planes.alpha is not None and planes.colour.shape[1] == 3


def test_cmyk_is_made_rgb():
    planes = to_planes(Image.new("CMYK", (4, 3), (0, 255, 255, 0)))  # red ink-free cyan: red
    assert planes.colour.shape == (1, 3, 3, 4) and not planes.grayscale
    assert planes.colour[0, :, 0, 0].tolist() == pytest.approx([1.0, 0.0, 0.0])


def test_to_uint8_rounds_and_clamps():
    x = torch.tensor([[-0.2, 0.0, 0.49 / 255, 0.51 / 255, 127.5 / 255, 1.0, 1.7]]).reshape(1, 1, 1, 7)
    assert to_uint8(x)[0, :, 0].tolist() == [0, 0, 0, 1, 128, 255, 255]
    colour = torch.stack([torch.full((2, 3), v) for v in (0.0, 0.5, 1.0)])[None]
    out = to_uint8(colour)
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8 and out[1, 2].tolist() == [0, 128, 255]


def test_luma_uses_bt601_weights_and_a_gray_image_is_its_own():
    pixels = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]).reshape(3, 3).T.reshape(1, 3, 1, 3)
    assert luma(pixels).shape == (1, 1, 1, 3)
    assert luma(pixels)[0, 0, 0].tolist() == pytest.approx([0.299, 0.587, 0.114])
    gray = torch.rand(2, 1, 4, 4)
    assert luma(gray) is gray


@given(st.integers(1, 30), st.integers(1, 30), st.integers(1, 40))
def test_the_centre_crop_is_the_middle_and_never_larger_than_the_image(h, w, side):
    image = torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w)
    crop = centre_crop(image, side)
    ch, cw = min(h, side), min(w, side)
    assert crop.shape == (1, 1, ch, cw)
    top, left = (h - ch) // 2, (w - cw) // 2
    assert torch.equal(crop, image[..., top:top + ch, left:left + cw])


@given(arrays(np.uint8, st.tuples(st.integers(1, 8), st.integers(1, 8), st.sampled_from([1, 3]))))
def test_planes_and_back_are_the_identity(array):
    image = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    planes = to_planes(image)
    assert np.array_equal(np.asarray(from_planes(planes.colour, planes.alpha)), np.asarray(image))
