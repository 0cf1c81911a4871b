"""main.py end to end on a small generated image, in a subprocess, as a user runs it; and its argument handling."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import main as cli
from app.engine.presets import PRESETS
from app.engine.zssr import SRResult

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--scale_factor", "2", "--scale_times", "1", "--model_depth", "2", "--model_width", "8",
        "--num_epochs", "4", "--crop_size", "16", "--min_iters", "0", "--eval_every", "2", "--lr_decay_step", "2",
        "--self_ensemble", "false", "--back_projection_iters", "1", "--num_threads", "1", "--device", "cpu",
        "--time_budget_s", "null", "--warm_start", "null"]


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

    monkeypatch.setattr(cli, "super_resolve", fake_super_resolve)
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
