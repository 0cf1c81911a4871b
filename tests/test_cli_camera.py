"""The CLI on camera files (main.py -> app/batch.py, the real engine on a tiny config): a JPEG is read as a JPEG
whatever the case of its extension (its sons reuse its tables, it starts from the photo weights), a lossless file
as lossless (clean sons, the clean weights), in single-output and batch mode alike."""

from __future__ import annotations

from pathlib import Path

import pytest

import main as cli
from app import batch
from app.engine import EngineConfig
from app.engine.network import ZSSRNet
from app.engine.warm_start import save_weights
from app.jpeg_profile import JpegProfile

TINY = ["--scale_factor", "2", "--scale_times", "1", "--model_depth", "2", "--model_width", "8",
        "--num_epochs", "4", "--crop_size", "16", "--min_iters", "0", "--eval_every", "2", "--lr_decay_step", "2",
        "--self_ensemble", "false", "--back_projection_iters", "1", "--num_threads", "1", "--device", "cpu",
        "--time_budget_s", "null", "--later_warm_start", "null"]
# Tiny weights, one file for each start the input may choose (auto), and no blur reading (a network of its own).
ARCH = EngineConfig(model_depth=2, model_width=8)
AUTO = ["--warm_start", "auto", "--blurry_photo_std", "null", "--self_check_fallback", "false",
        "--estimate_noise", "false", "--noise_std", "0", "--sons_jpeg", "true"]

JPEG_NAMES = ["IMG_1234.JPG", "photo.jpg", "photo.jpeg", "photo.JPEG", "photo.Jpg"]
LOSSLESS_NAMES = ["scan.png", "SCAN.PNG", "scan.webp", "scan.TIF"]


@pytest.fixture
def starts(tmp_path) -> list[str]:
    """--photo_warm_start and --clean_warm_start on two tiny weights files named for what they are."""
    folder = tmp_path / "weights"
    folder.mkdir()
    for name in ("photo.pt", "clean.pt"):
        save_weights(ZSSRNet(ARCH), ARCH, folder / name, recipe={"scale_factor": 2.0})
    return ["--photo_warm_start", str(folder / "photo.pt"), "--clean_warm_start", str(folder / "clean.pt")]


@pytest.fixture
def results(monkeypatch) -> list:
    """main.main in-process (pytest's logging kept); each enlargement's SRResult as the real engine returns it."""
    seen = []
    real = batch.super_resolve

    def recording(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(batch, "super_resolve", recording)
    monkeypatch.setattr(cli, "configure_logging", lambda level: None)
    return seen


def save_photo(make_image, path: Path) -> None:
    """A 20x14 picture; a JPEG at quality 70 with 4:2:0 chroma (tables unlike any default), else losslessly."""
    image = make_image(20, 14)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        image.save(path, "JPEG", quality=70, subsampling=2)
    else:
        image.save(path, {".png": "PNG", ".webp": "WEBP", ".tif": "TIFF"}[path.suffix.lower()])


def enlarge(argv: list[str], results: list) -> list:
    assert cli.main([*argv, *TINY, "--quiet", *AUTO]) == 0
    return results


@pytest.mark.parametrize("name", JPEG_NAMES)
def test_a_jpeg_whatever_its_extensions_case_learns_from_its_own_tables_and_the_photo_start(
        name, make_image, starts, results, tmp_path):
    source = tmp_path / name
    save_photo(make_image, source)
    (result,) = enlarge([str(source), "--output", str(tmp_path / "out.png"), *starts], results)
    assert result.warm_start == {"weights": "photo.pt", "chosen_by": "a JPEG input"}
    assert result.degradation["jpeg"] == JpegProfile.read(source.read_bytes()).describe()
    assert result.degradation["jpeg"]["subsampling"] == "4:2:0"


@pytest.mark.parametrize("name", LOSSLESS_NAMES)
def test_a_lossless_file_learns_from_clean_sons_and_the_clean_start(name, make_image, starts, results, tmp_path):
    source = tmp_path / name
    save_photo(make_image, source)
    (result,) = enlarge([str(source), "--output", str(tmp_path / "out.png"), *starts], results)
    assert result.warm_start == {"weights": "clean.pt", "chosen_by": "a lossless input"}
    assert result.degradation["jpeg"] is None


def test_a_folder_of_camera_files_reads_each_by_what_it_is(make_image, starts, results, tmp_path):
    folder = tmp_path / "card"
    folder.mkdir()
    names = ["IMG_0001.JPG", "IMG_0002.JPEG", "IMG_0003.PNG"]
    for name in names:
        save_photo(make_image, folder / name)
    out = tmp_path / "out"
    enlarge([str(folder), "--out-dir", str(out), *starts], results)
    assert sorted(p.name for p in out.iterdir()) == ["IMG_0001_x2.png", "IMG_0002_x2.png", "IMG_0003_x2.png"]
    # expand_inputs sorts the folder's files by name, so the results come in the order of `names`.
    assert [r.warm_start["chosen_by"] for r in results] == ["a JPEG input", "a JPEG input", "a lossless input"]
    assert [r.degradation["jpeg"] is not None for r in results] == [True, True, False]


def test_a_png_named_jpg_is_read_as_the_lossless_image_it_holds(make_image, starts, results, tmp_path):
    # The extension asks for its tables, but the file has none: clean sons and the clean start.
    source = tmp_path / "IMG_9999.JPG"
    make_image(20, 14).save(source, "PNG")
    (result,) = enlarge([str(source), "--output", str(tmp_path / "out.png"), *starts], results)
    assert result.warm_start == {"weights": "clean.pt", "chosen_by": "a lossless input"}
    assert result.degradation["jpeg"] is None
