"""main.py end to end on a small generated image, in a subprocess, as a user runs it; its argument handling; and
batch mode (folders, several files, output formats, failures; app/batch.py), in-process."""

from __future__ import annotations

import base64
import io
import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

import main as cli
from app import batch
from app.engine.estimate import Estimate
from app.engine.presets import PRESETS
from app.engine.zssr import SRResult
from app.jobs.output import FORMATS, srgb_profile

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--scale_factor", "2", "--scale_times", "1", "--model_depth", "2", "--model_width", "8",
        "--num_epochs", "4", "--crop_size", "16", "--min_iters", "0", "--eval_every", "2", "--lr_decay_step", "2",
        "--self_ensemble", "false", "--back_projection_iters", "1", "--num_threads", "1", "--device", "cpu",
        "--time_budget_s", "null", "--warm_start", "null", "--later_warm_start", "null"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def input_png(make_image, tmp_path) -> Path:
    path = tmp_path / "in.png"
    make_image(20, 14).save(path)
    return path


def test_enlarges_an_image_to_a_file(input_png, tmp_path):
    output = tmp_path / "out" / "result.png"
    proc = run_cli("--image", str(input_png), "--output", str(output), *TINY)
    assert proc.returncode == 0, proc.stderr
    with Image.open(output) as result:
        assert result.size == (40, 28) and result.mode == "RGB"
    assert proc.stdout == ""
    assert "step 1/1" in proc.stderr  # the tqdm bar goes to stderr
    assert sorted(p.name for p in output.parent.iterdir()) == ["result.png"]  # no temporary files left


def test_prints_base64_when_there_is_no_output_path(input_png):
    proc = run_cli("--image", str(input_png), "--output", "null", "--base64", "true", "--quiet", *TINY)
    assert proc.returncode == 0, proc.stderr
    data = base64.b64decode(proc.stdout.strip(), validate=True)
    with Image.open(io.BytesIO(data)) as result:
        assert result.format == "PNG" and result.size == (40, 28)


def test_an_unknown_key_exits_nonzero_naming_it(input_png, tmp_path):
    output = tmp_path / "out.png"
    proc = run_cli("--image", str(input_png), "--output", str(output), "--quiet", *TINY, "--no_such_key", "3")
    assert proc.returncode != 0
    assert "no_such_key" in proc.stderr and "Traceback" not in proc.stderr
    assert not output.exists()


def test_a_missing_image_is_a_clear_error_and_writes_nothing(tmp_path):
    output = tmp_path / "out.png"
    missing = tmp_path / "nope.png"
    proc = run_cli("--image", str(missing), "--output", str(output), "--quiet", *TINY)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "not found" in proc.stderr and str(missing) in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def fake_engine(monkeypatch):
    """Runs main.main in-process with the engine replaced by a recorder (argument handling only)."""
    seen = {}

    def fake_super_resolve(image, config, **kwargs):
        seen["config"] = config
        return SRResult(image.resize((image.width * 2, image.height * 2)), 1, (1,), 0.0, "cpu", False)

    monkeypatch.setattr(batch, "super_resolve", fake_super_resolve)
    monkeypatch.setattr(batch, "estimate", lambda inputs: Estimate(60.0, 30.0, "cpu (fake)"))
    monkeypatch.setattr(cli, "configure_logging", lambda level: None)
    return seen


def test_command_line_values_override_the_file_and_the_preset(fake_engine, input_png, tmp_path):
    output = tmp_path / "o.png"
    code = cli.main(["--image", str(input_png), "--output", str(output), "--preset", "fast", "--num_epochs", "7",
                     "--seed", "null", "--quiet"])
    assert code == 0 and output.exists()
    config = fake_engine["config"]
    assert config.num_epochs == 7  # the command line beats the preset's own
    preset = PRESETS["fast"]
    assert config.eval_every == preset["eval_every"] and config.min_iters == preset["min_iters"]  # beats config.json
    assert config.seed is None  # JSON null
    assert config.scale_times == 3  # config.json's own value where neither touches it


def test_a_preset_over_the_shipped_config_takes_the_command_lines_scale(fake_engine, input_png, tmp_path):
    # config.json says x8 and later_warm_start; paper-gradual is pure zero-shot and, at the x2 asked for here,
    # the authors' six steps (the preset is resolved with the command line's scale, not config.json's).
    output = tmp_path / "o.png"
    code = cli.main(["--image", str(input_png), "--output", str(output), "--preset", "paper-gradual",
                     "--scale_times", "1", "--quiet"])
    assert code == 0
    config = fake_engine["config"]
    assert (config.total_scale, len(config.steps), config.later_warm_start) == (2.0, 6, None)
    code = cli.main(["--image", str(input_png), "--output", str(output), "--preset", "paper-gradual", "--quiet"])
    assert code == 0 and fake_engine["config"].steps == ((2.0, 2.0), (4.0, 4.0), (8.0, 8.0))


def test_a_config_file_can_be_named(fake_engine, input_png, tmp_path):
    config_file = tmp_path / "c.json"
    config_file.write_text('{"model_depth": 3, "output": null, "base64": false}')
    code = cli.main(["--config", str(config_file), "--image", str(input_png), "--quiet"])
    assert code == 2  # neither an output path nor base64
    code = cli.main(["--config", str(config_file), "--image", str(input_png), "--output",
                     str(tmp_path / "o.png"), "--quiet"])
    assert code == 0 and fake_engine["config"].model_depth == 3


def test_no_image_is_an_error(fake_engine, capsys, tmp_path):
    config_file = tmp_path / "c.json"
    config_file.write_text("{}")
    assert cli.main(["--config", str(config_file), "--quiet"]) == 2
    assert "image" in capsys.readouterr().err


@pytest.mark.parametrize("args, key", [
    (["--model_depth", "1"], "model_depth"),
    (["--model_depth", "true"], "model_depth"),
    (["--lr", "fast"], "lr"),
    (["--device", "gpu"], "device"),
    (["--scale_factor", "2", "--crop_size", "3"], "crop_size"),
    (["--log_level", "LOUD"], "log_level"),
    (["--preset", "paper-gradual", "--scale_factor", "abc"], "scale_factor"),  # before the preset reads it
])
def test_bad_values_exit_nonzero_naming_the_key(fake_engine, capsys, input_png, tmp_path, args, key):
    output = tmp_path / "out.png"
    assert cli.main(["--image", str(input_png), "--output", str(output), "--quiet", *args]) != 0
    assert repr(key) in capsys.readouterr().err
    assert "config" not in fake_engine and not output.exists()


def test_an_unknown_option_is_a_usage_error(fake_engine, capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["--image", "x.png", "--modle_depth", "3"])
    assert excinfo.value.code != 0
    assert "--modle_depth" in capsys.readouterr().err


def test_an_undecodable_image_is_a_clear_error(fake_engine, capsys, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not a png")
    output = tmp_path / "out.png"
    assert cli.main(["--image", str(bad), "--output", str(output), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "cannot decode" in err and str(bad) in err
    assert not output.exists() and "config" not in fake_engine


@pytest.fixture
def no_logging_setup(monkeypatch):
    """main.main in-process with the real engine, leaving pytest's logging handlers in place."""
    monkeypatch.setattr(cli, "configure_logging", lambda level: None)


def test_enlarges_a_folder_skipping_what_cannot_be_read(no_logging_setup, make_image, capsys, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    make_image(20, 14).save(folder / "a.png")
    make_image(16, 18).save(folder / "b.JPG")
    make_image(18, 16, "L").save(folder / "c.webp")
    (folder / "bad.jpg").write_bytes(b"not a jpeg")
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert cli.main([str(folder), "--out-dir", str(out), *TINY, "--scale_times", "2"]) == 1
    expected = {"a_x4.png": (80, 56), "b_x4.png": (64, 72), "c_x4.png": (72, 64)}  # named for the total scale
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)  # no temporary files left
    for name, size in expected.items():
        with Image.open(out / name) as result:
            assert result.format == "PNG" and result.size == size
    captured = capsys.readouterr()
    bad = folder / "bad.jpg"
    assert any(line.startswith("error: ") and str(bad) in line and "cannot decode" in line
               for line in captured.err.splitlines())
    assert f"3 of 4 images enlarged; 1 failed: {bad}" in captured.err.splitlines()
    assert "notes.txt" not in captured.err
    assert "4/4" in captured.err and "step 2/2" in captured.err  # the bar over files and each file's own
    assert captured.out == ""


def test_several_files_go_to_the_output_folder(fake_engine, make_image, capsys, tmp_path):
    first, second = tmp_path / "a.png", tmp_path / "b.jpg"
    make_image(20, 14).save(first)
    make_image(12, 10).save(second)
    out = tmp_path / "results"
    assert cli.main([str(first), "--quiet", str(second), "--out-dir", str(out), "--scale_times", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_x2.png", "b_x2.png"]
    with Image.open(out / "b_x2.png") as result:
        assert result.size == (24, 20)
    err = capsys.readouterr().err
    assert "2 of 2 images enlarged" in err
    assert "%|" not in err  # --quiet: no progress bar


@pytest.mark.parametrize("extra", [[], ["--output", "o.png"]])
def test_several_inputs_need_an_output_folder(fake_engine, make_image, capsys, tmp_path, extra):
    for name in ("a.png", "b.png"):
        make_image(20, 14).save(tmp_path / name)
    for inputs in ([str(tmp_path / "a.png"), str(tmp_path / "b.png")], [str(tmp_path)]):
        assert cli.main([*inputs, *extra, "--quiet"]) == 2
        assert "--out-dir" in capsys.readouterr().err
    assert "config" not in fake_engine and sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]


def test_conflicting_inputs_are_usage_errors(fake_engine, make_image, capsys, tmp_path):
    make_image(20, 14).save(tmp_path / "a.png")
    make_image(20, 14).save(tmp_path / "a.jpg")
    out = tmp_path / "out"
    assert cli.main([str(tmp_path), "--out-dir", str(out), "--quiet"]) == 2  # both would be a_x8.png
    assert "a_x8.png" in capsys.readouterr().err
    assert cli.main([str(tmp_path / "a.png"), "--image", str(tmp_path / "a.jpg"), "--out-dir", str(out)]) == 2
    assert "--image" in capsys.readouterr().err
    assert "config" not in fake_engine and not out.exists()


@pytest.mark.parametrize("fmt, ext, pillow_name", [("webp", "webp", "WEBP"), ("jpeg", "jpg", "JPEG")])
def test_output_format_and_quality(fake_engine, make_image, tmp_path, fmt, ext, pillow_name):
    source = tmp_path / "in.png"
    make_image(40, 30, "RGBA").save(source)  # JPEG has no alpha: flattened to RGB
    sizes = {}
    for quality in (10, 80):
        out = tmp_path / f"q{quality}"
        assert cli.main([str(source), "--out-dir", str(out), "--format", fmt, "--quality", str(quality),
                         "--scale_times", "1", "--quiet"]) == 0
        output = out / f"in_x2.{ext}"
        with Image.open(output) as result:
            assert result.format == pillow_name and result.size == (80, 60)
        sizes[quality] = output.stat().st_size
    assert sizes[10] < 0.8 * sizes[80]


def test_a_single_output_takes_its_format_from_the_extension_or_format(fake_engine, input_png, capsys, tmp_path):
    output = tmp_path / "o.webp"
    assert cli.main(["--image", str(input_png), "--output", str(output), "--quiet"]) == 0
    with Image.open(output) as result:
        assert result.format == "WEBP"
    assert cli.main(["--image", str(input_png), "--output", str(tmp_path / "o.png"), "--format", "jpeg"]) == 2
    assert ".jpg" in capsys.readouterr().err and not (tmp_path / "o.png").exists()
    assert cli.main([str(input_png), "--output", "null", "--base64", "true", "--format", "jpeg", "--quiet"]) == 0
    data = base64.b64decode(capsys.readouterr().out.strip(), validate=True)
    with Image.open(io.BytesIO(data)) as result:
        assert result.format == "JPEG"


@pytest.mark.parametrize("value", ["0", "101", "high"])
def test_a_quality_out_of_range_is_a_usage_error(fake_engine, capsys, input_png, tmp_path, value):
    with pytest.raises(SystemExit) as excinfo:
        cli.main([str(input_png), "--out-dir", str(tmp_path / "out"), "--format", "jpeg", "--quality", value])
    assert excinfo.value.code == 2
    assert "--quality" in capsys.readouterr().err
    assert "config" not in fake_engine and not (tmp_path / "out").exists()


def half_written_save(out: Path, error: BaseException, writes: list[Path]):
    """A stand-in for Image.save that writes part of a file, checks it is not the output's own path, and fails."""

    def save(image, fp, format=None, **params):
        written = Path(fp.name)
        assert written.parent == out and not written.name.endswith(".png")  # a temporary beside the output
        writes.append(written)
        fp.write(b"\x89PNG\r\n half an image")
        raise error

    return save


def test_a_failed_write_leaves_nothing_and_the_batch_goes_on(fake_engine, make_image, monkeypatch, capsys,
                                                             tmp_path):
    sources = [tmp_path / "a.png", tmp_path / "b.png"]
    for source in sources:
        make_image(20, 14).save(source)
    out = tmp_path / "out"
    writes: list[Path] = []
    monkeypatch.setattr(Image.Image, "save", half_written_save(out, OSError("No space left on device"), writes))
    assert cli.main([*map(str, sources), "--out-dir", str(out), "--scale_times", "1", "--quiet"]) == 1
    assert len(writes) == 2 and list(out.iterdir()) == []
    err = capsys.readouterr().err
    assert f"error: skipped {sources[0]}: No space left on device" in err
    assert "0 of 2 images enlarged; 2 failed" in err


def test_an_interrupted_write_leaves_nothing(fake_engine, input_png, monkeypatch, tmp_path):
    out = tmp_path / "out"
    writes: list[Path] = []
    monkeypatch.setattr(Image.Image, "save", half_written_save(out, KeyboardInterrupt(), writes))
    with pytest.raises(KeyboardInterrupt):
        cli.main(["--image", str(input_png), "--output", str(out / "result.png"), "--quiet"])
    assert len(writes) == 1 and list(out.iterdir()) == []


# From Debian's libgs-common (.ci/run installs it), as the web's output tests use: Adobe RGB, gray and CMYK profiles.
ICC = Path("/usr/share/color/icc/ghostscript")
TAGS = ExifTags.Base


def camera_jpeg(path: Path, image: Image.Image, icc: bytes | None) -> None:
    """`image` saved as a camera would: EXIF with its make, a rotation to view it upright (orientation 6) and its
    stored size, and `icc`."""
    exif = Image.Exif()
    exif[TAGS.Make], exif[TAGS.Orientation] = "Zeiss", 6
    exif[TAGS.ImageWidth], exif[TAGS.ImageLength] = image.size
    exif.get_ifd(ExifTags.IFD.Exif)[TAGS.DateTimeOriginal] = "2026:11:27 10:00:00"
    image.save(path, format="JPEG", quality=95, exif=exif, **({"icc_profile": icc} if icc else {}))


def assert_kept(result: Image.Image, icc: bytes | None, size: tuple[int, int]) -> None:
    assert result.size == size and result.info.get("icc_profile") == icc
    exif = result.getexif()
    assert exif[TAGS.Make] == "Zeiss" and exif.get(TAGS.Orientation, 1) == 1  # the pixels are upright already
    assert (exif[TAGS.ImageWidth], exif[TAGS.ImageLength]) == size
    assert exif.get_ifd(ExifTags.IFD.Exif)[TAGS.DateTimeOriginal] == "2026:11:27 10:00:00"


@pytest.mark.parametrize("fmt, pil_format", [("png", "PNG"), ("webp", "WEBP"), ("jpeg", "JPEG")])
def test_a_photos_colour_profile_and_exif_are_kept(no_logging_setup, make_image, tmp_path, fmt, pil_format):
    adobe_rgb = (ICC / "a98.icc").read_bytes()
    source = tmp_path / "photo.jpg"
    camera_jpeg(source, make_image(20, 14), adobe_rgb)  # stored 20x14, seen 14x20
    out = tmp_path / "out"
    assert cli.main([str(source), "--out-dir", str(out), "--format", fmt, *TINY, "--quiet"]) == 0
    with Image.open(out / f"photo_x2.{FORMATS[fmt][2]}") as result:
        assert result.format == pil_format
        assert_kept(result, adobe_rgb, (28, 40))


def test_the_single_output_and_base64_keep_them_too(no_logging_setup, make_image, capsys, tmp_path):
    gray = (ICC / "default_gray.icc").read_bytes()
    source = tmp_path / "photo.jpg"
    camera_jpeg(source, make_image(20, 14, "L"), gray)
    assert cli.main(["--image", str(source), "--output", str(tmp_path / "o.png"), *TINY, "--quiet"]) == 0
    with Image.open(tmp_path / "o.png") as result:
        assert result.mode == "L"
        assert_kept(result, gray, (28, 40))
    capsys.readouterr()
    assert cli.main(["--image", str(source), "--output", "null", "--base64", "true", *TINY, "--quiet"]) == 0
    with Image.open(io.BytesIO(base64.b64decode(capsys.readouterr().out.strip(), validate=True))) as result:
        assert_kept(result, gray, (28, 40))


def test_a_cmyk_photo_is_enlarged_in_srgb_and_tagged_so(no_logging_setup, make_image, tmp_path):
    swop = (ICC / "default_cmyk.icc").read_bytes()
    source = tmp_path / "print.jpg"
    make_image(20, 14).convert("CMYK").save(source, format="JPEG", quality=95, icc_profile=swop)
    output = tmp_path / "print.png"
    assert cli.main(["--image", str(source), "--output", str(output), *TINY, "--quiet"]) == 0
    with Image.open(output) as result:
        assert result.mode == "RGB" and result.info["icc_profile"] == srgb_profile()


@pytest.mark.parametrize("fmt, mode", [("png", "RGBA"), ("webp", "RGBA"), ("jpeg", "RGB")])
def test_transparency_stays_where_the_format_has_it(no_logging_setup, make_image, tmp_path, fmt, mode):
    image = make_image(20, 14, "RGBA")
    alpha = np.zeros((14, 20), np.uint8)
    alpha[:, 10:] = 255  # the left half transparent, the right half opaque
    image.putalpha(Image.fromarray(alpha))
    source = tmp_path / "logo.png"
    image.save(source)
    out = tmp_path / "out"
    assert cli.main([str(source), "--out-dir", str(out), "--format", fmt, *TINY, "--quiet"]) == 0
    with Image.open(out / f"logo_x2.{FORMATS[fmt][2]}") as result:
        assert result.mode == mode and result.size == (40, 28)
        if mode == "RGBA":
            kept = np.asarray(result.getchannel("A"))
            assert kept[:, :16].max() < 64 and kept[:, 24:].min() > 192


def test_a_profile_that_does_not_describe_the_results_colours_is_left_out(fake_engine, make_image, tmp_path):
    source = tmp_path / "odd.png"
    make_image(20, 14).save(source, icc_profile=(ICC / "default_gray.icc").read_bytes())  # gray, on RGB pixels
    assert cli.main(["--image", str(source), "--output", str(tmp_path / "o.png"), "--quiet"]) == 0
    with Image.open(tmp_path / "o.png") as result:
        assert result.mode == "RGB" and "icc_profile" not in result.info


def gps_jpeg(path: Path, image: Image.Image) -> None:
    """`image` saved as a phone would: its make, and where it was taken in a GPS IFD."""
    exif = Image.Exif()
    exif[TAGS.Make] = "Zeiss"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", (48.0, 51.0, 29.0)
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", (2.0, 17.0, 40.0)
    image.save(path, format="JPEG", quality=95, exif=exif)


def test_without_gps_drops_the_position_and_keeps_the_rest(make_image, tmp_path):
    from app.jobs.output import without_gps

    gps_jpeg(tmp_path / "p.jpg", make_image(20, 14))
    with Image.open(tmp_path / "p.jpg") as photo:
        exif = photo.info["exif"]
    kept = Image.Exif()
    kept.load(without_gps(exif))
    assert kept[TAGS.Make] == "Zeiss" and ExifTags.IFD.GPSInfo not in kept and not kept.get_ifd(ExifTags.IFD.GPSInfo)
    assert without_gps(None) is None and without_gps(b"not exif") is None
    plain = Image.Exif()
    plain[TAGS.Make] = "Zeiss"
    assert without_gps(plain.tobytes()) == plain.tobytes()  # nothing to drop: the bytes as they were


@pytest.mark.parametrize("keep_gps", [False, True])
def test_the_cli_drops_the_gps_position_unless_keep_gps(fake_engine, make_image, tmp_path, keep_gps):
    source = tmp_path / "phone.jpg"
    gps_jpeg(source, make_image(20, 14))
    out = tmp_path / "out.jpg"
    assert cli.main(["--image", str(source), "--output", str(out), "--keep_gps", str(keep_gps).lower(),
                     "--quiet"]) == 0
    with Image.open(out) as result:
        exif = result.getexif()
    assert exif[TAGS.Make] == "Zeiss"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    assert (gps.get(ExifTags.GPS.GPSLatitudeRef) == "N") is keep_gps
    assert (ExifTags.IFD.GPSInfo in exif) is keep_gps


def test_the_output_size_and_time_are_logged_before_any_work(fake_engine, make_image, caplog, tmp_path):
    source = tmp_path / "photo.png"
    make_image(30, 20).save(source)
    caplog.set_level(logging.INFO, logger="app.batch")
    assert cli.main(["--image", str(source), "--output", str(tmp_path / "o.png"), "--quiet"]) == 0
    first, second = caplog.messages[:2]  # the shipped config: 8x
    assert first == f"{source}: 30x20 -> 240x160 (38,400 pixels, x8)"
    assert second == "estimated time on cpu (fake): about 90 s (training up to 60 s, enlarging 30 s)"


def test_the_estimate_times_the_network_on_this_device(make_image, caplog, tmp_path):
    from app.config import load_settings

    source = tmp_path / "photo.png"
    make_image(30, 20).save(source)
    caplog.set_level(logging.INFO, logger="app.batch")
    engine = load_settings(overrides={k.lstrip("-"): cli.parse_value(v) for k, v in zip(TINY[::2], TINY[1::2])}).engine
    batch.check_sizes([source], engine, None)
    assert re.fullmatch(r"estimated time on cpu \(1 thread\): about .+ \(training up to .+, enlarging .+\)",
                        caplog.messages[-1])


@pytest.mark.parametrize("several", [False, True])
def test_an_output_beyond_max_output_pixels_is_refused_before_any_work(fake_engine, make_image, capsys, tmp_path,
                                                                      several):
    big, small = tmp_path / "big.png", tmp_path / "small.png"
    make_image(300, 200).save(big)  # 2400x1600 at the shipped 8x: 3,840,000 pixels
    make_image(20, 14).save(small)
    out = tmp_path / "out"
    args = [str(small), str(big), "--out-dir", str(out)] if several else [str(big), "--output", str(out / "b.png")]
    assert cli.main([*args, "--max_output_pixels", "1000000", "--quiet"]) == 2
    error = capsys.readouterr().err
    assert f"{big} would become 2400x1600 = 3,840,000 pixels" in error and "max_output_pixels (1,000,000)" in error
    assert "--allow-large" in error
    assert not fake_engine and not out.exists()  # nothing enlarged, nothing written
    # The limit is the config's (the service's 16,000,000 by default), raised or lifted on the command line.
    assert cli.main([*args, "--max_output_pixels", "4000000", "--quiet"]) == 0
    assert cli.main([*args, "--max_output_pixels", "1000000", "--allow-large", "--quiet"]) == 0


def test_the_guard_counts_the_upright_size_and_the_steps_scales(make_image, tmp_path):
    from app.config import load_settings

    source = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[TAGS.Orientation] = 6
    make_image(30, 20).save(source, format="JPEG", exif=exif)
    assert batch.upright_size(source) == (20, 30)
    assert batch.upright_size(tmp_path / "missing.png") is None
    engine = load_settings().engine
    assert batch.output_size((20, 30), engine) == (160, 240)
    assert batch.output_size((20, 30), engine.replace(scale_times=2)) == (80, 120)


def test_the_estimate_follows_each_inputs_profile(make_image, monkeypatch, tmp_path):
    from app.config import load_settings

    seen = []
    monkeypatch.setattr(batch, "estimate", lambda inputs: seen.extend(inputs) or Estimate(1.0, 1.0, "cpu"))
    for name in ("a.jpg", "b.png"):
        make_image(30, 20).save(tmp_path / name)
    engine = load_settings().engine
    batch.check_sizes([tmp_path / "a.jpg", tmp_path / "b.png"], engine, None)
    (jpeg_size, jpeg), (png_size, png) = seen
    assert jpeg_size == png_size == (30, 20)
    assert jpeg == engine.with_profile("photo") and png == engine.with_profile("lossless")


def test_the_estimate_counts_the_ensemble_and_the_learning(monkeypatch):
    from app.config import load_settings
    from app.engine import estimate as estimates

    timed = []
    monkeypatch.setattr(estimates, "_time_network", lambda config, device: timed.append(config) or (1e-6, 0.01))
    engine = load_settings(overrides={k.lstrip("-"): cli.parse_value(v) for k, v in zip(TINY[::2], TINY[1::2])}).engine
    engine = engine.replace(profiles=None, scale_times=2, self_ensemble=True, ensemble_steps=None, num_epochs=100)
    every = estimates.estimate([((40, 30), engine), ((40, 30), engine.replace(ensemble_steps=1))])
    assert len(timed) == 1  # one design, timed once
    # Step 1 makes 80x60 pixels, step 2 160x120: 8 passes of each, then 8 of the first and one of the second.
    assert every.enlarging_s == pytest.approx(1e-6 * (8 * 4800 + 8 * 19200 + 8 * 4800 + 19200))
    assert every.training_s == pytest.approx(2 * 2 * 100 * 0.01)
    assert estimates.estimate([((40, 30), engine.replace(test_time_learning=False))]).training_s == 0.0
    assert estimates.estimate([((40, 30), engine.replace(time_budget_s=0.5))]).training_s == 0.5
