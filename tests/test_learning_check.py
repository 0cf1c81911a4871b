"""The prior chosen by the input (warm_start auto) and learning that never hurts (learning_check)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from app.engine.config import EngineConfig
from app.engine.holdout import MAX_STRIP_LENGTH, MIN_STRIP, HeldOut, Judgement, judge
from app.engine.jpeg import JpegProfile
from app.engine.network import ZSSRNet
from app.engine.pairs import make_downscale
from app.engine.warm_start import WarmStart, choose_warm_start, save_weights
from app.engine.zssr import super_resolve
from app.errors import ConfigError


@pytest.fixture
def two_weights(tiny_config, tmp_path):
    """Two weights files of the tiny network that differ: (photo path, clean path)."""
    paths = []
    for seed, name in ((1, "photo.pt"), (2, "clean.pt")):
        torch.manual_seed(seed)
        net = ZSSRNet(tiny_config)
        torch.nn.init.normal_(net.layers[-1].weight, 0.0, 0.01)
        save_weights(net, tiny_config, tmp_path / name, recipe={"scale_factor": 2.0})
        paths.append(str(tmp_path / name))
    return paths


def auto(config: EngineConfig, photo: str, clean: str, **changes) -> EngineConfig:
    return config.replace(**{"warm_start": "auto", "photo_warm_start": photo, "clean_warm_start": clean, **changes})


def test_auto_starts_a_jpeg_from_the_photo_weights_and_a_lossless_image_from_the_clean(tiny_config, two_weights):
    photo, clean = two_weights
    config = auto(tiny_config, photo, clean)
    assert choose_warm_start(config, jpeg=True).path == photo
    assert choose_warm_start(config, jpeg=True).reason == "a JPEG input"
    assert choose_warm_start(config, jpeg=False).path == clean
    assert choose_warm_start(config, jpeg=False).reason == "a lossless input"


def test_auto_with_a_given_kernel_starts_from_the_clean_weights_even_for_a_jpeg(tiny_config, two_weights, tmp_path):
    photo, clean = two_weights
    kernel = tmp_path / "k.npy"
    np.save(kernel, np.full((5, 5), 1 / 25))
    choice = choose_warm_start(auto(tiny_config, photo, clean, kernel=str(kernel)), jpeg=True)
    assert (choice.path, choice.reason) == (clean, "a blur kernel is given")


def test_a_file_or_null_in_warm_start_is_forced_for_every_input(tiny_config, two_weights):
    photo, clean = two_weights
    for jpeg in (True, False):
        assert choose_warm_start(tiny_config.replace(warm_start=clean), jpeg).path == clean
        assert choose_warm_start(tiny_config.replace(warm_start=clean), jpeg).reason == "the config"
        assert choose_warm_start(tiny_config.replace(warm_start=None), jpeg).path is None


@pytest.mark.parametrize("missing", ["photo_warm_start", "clean_warm_start"])
def test_auto_without_both_weights_is_a_config_error_naming_the_missing_one(tiny_config, two_weights, missing):
    photo, clean = two_weights
    with pytest.raises(ConfigError) as excinfo:
        auto(tiny_config, photo, clean, **{missing: None})
    assert excinfo.value.key == missing


def test_the_pipeline_loads_the_chosen_weights_and_says_which(tiny_config, two_weights, rgb_image):
    photo, clean = two_weights
    config = auto(tiny_config, photo, clean, num_epochs=1)
    jpeg = super_resolve(rgb_image, config, jpeg=JpegProfile.standard(90))
    lossless = super_resolve(rgb_image, config)
    assert jpeg.warm_start == {"weights": "photo.pt", "chosen_by": "a JPEG input"}
    assert lossless.warm_start == {"weights": "clean.pt", "chosen_by": "a lossless input"}
    # Not only named: the two starts give different images.
    assert np.asarray(jpeg.image).tolist() != np.asarray(lossless.image).tolist()


def test_a_blurry_jpeg_starts_from_the_blurry_weights_where_they_are_set(tiny_config, two_weights):
    photo, clean = two_weights
    config = auto(tiny_config, photo, clean, blurry_warm_start=clean)
    assert choose_warm_start(config, jpeg=True, blurry=True) == WarmStart(clean, "a blurry JPEG input")
    assert choose_warm_start(config, jpeg=True, blurry=False) == WarmStart(photo, "a JPEG input")
    assert choose_warm_start(config, jpeg=False, blurry=True) == WarmStart(clean, "a lossless input")
    unset = config.replace(blurry_warm_start=None)
    assert choose_warm_start(unset, jpeg=True, blurry=True) == WarmStart(photo, "a JPEG input")
    forced = config.replace(warm_start=photo)
    assert choose_warm_start(forced, jpeg=True, blurry=True) == WarmStart(photo, "the config")


def test_the_cli_reads_a_jpegs_profile_and_logs_the_choice(tiny_config, two_weights, rgb_image, tmp_path, capsys):
    import main

    photo, clean = two_weights
    config = {k: v for k, v in json.loads((main.DEFAULT_PATH).read_text()).items()}
    config.update({k: getattr(tiny_config, k) for k in ("model_depth", "model_width", "num_epochs", "crop_size",
                                                         "min_iters", "eval_every", "lr_decay_step",
                                                         "lr_decay_range", "back_projection_iters")})
    config.update(warm_start=clean, later_warm_start=None, scale_times=1, self_ensemble=False, device="cpu",
                  num_threads=1, learning_check=False, time_budget_s=None, image=None,
                  profiles={"photo": {"warm_start": photo}, "lossless": {}})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    source = tmp_path / "small.jpg"
    rgb_image.save(source, quality=90)
    assert main.main(["--config", str(path), "--image", str(source), "--output", str(tmp_path / "out.png"),
                      "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "profile: photo (chosen by a JPEG input)" in err
    assert "photo.pt (chosen by a JPEG input)" in err


def strip_image(height: int = 96, width: int = 80) -> torch.Tensor:
    """Flat everywhere but a textured band along the right edge."""
    image = torch.full((1, 3, height, width), 0.5)
    gen = torch.Generator().manual_seed(0)
    image[..., width - 12:] = torch.rand(1, 3, height, 12, generator=gen)
    return image


def test_the_held_out_strip_is_the_most_detailed_edge_and_training_keeps_the_rest():
    image = strip_image()
    held_out = HeldOut.split(image)
    assert held_out.edge == "right"
    thickness = max(MIN_STRIP, round(80 * 0.125))
    assert held_out.strip.shape[-2:] == (96, thickness)
    assert torch.equal(held_out.strip, image[..., -thickness:])
    assert torch.equal(held_out.train, image[..., :-thickness])


def test_a_long_strip_is_cut_to_its_most_detailed_stretch():
    image = torch.full((1, 3, 64, 600), 0.5)
    image[..., :16, 400:460] = torch.rand(1, 3, 16, 60, generator=torch.Generator().manual_seed(1))
    held_out = HeldOut.split(image)
    assert held_out.edge == "top" and held_out.strip.shape[-1] == MAX_STRIP_LENGTH
    # The stretch holds the whole textured patch.
    assert int((held_out.strip != 0.5).sum()) == int((image != 0.5).sum()) > 0


def test_a_photo_too_small_to_spare_a_strip_holds_nothing_out():
    assert HeldOut.split(torch.rand(1, 3, 40, 40)) is None
    assert HeldOut.split(torch.rand(1, 3, 40, 80)) is not None  # the long side can spare one


class Scaled(torch.nn.Module):
    """A network whose output is its input times `gain` (1: perfect on an identity task)."""

    def __init__(self, gain: float):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(gain))

    def forward(self, x):
        return x * self.gain


@pytest.mark.parametrize("before_gain, after_gain, kept", [(0.9, 1.0, True), (1.0, 0.9, False), (1.0, 1.0, False)])
def test_judge_keeps_the_learning_only_where_it_is_strictly_ahead(before_gain, after_gain, kept):
    held_out = HeldOut(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), "top")
    net = Scaled(after_gain)
    before = {"gain": torch.tensor(before_gain)}
    identity = lambda hr, out_size=None: hr  # noqa: E731  (sons equal to their fathers)
    judgement = judge(net, net, before, held_out, 1, 1.0, identity, None)
    assert judgement.kept is kept
    assert float(net.gain.detach()) == pytest.approx(after_gain if kept else before_gain)
    assert judgement.describe()["kept"] is kept and judgement.describe()["step"] == 1


def test_judgement_reports_the_gain_as_the_difference():
    judgement = Judgement(2, 30.25, 30.0)
    assert judgement.gain_db == pytest.approx(0.25)
    assert judgement.describe() == {"step": 2, "adapted_db": 30.25, "warm_start_db": 30.0, "gain_db": 0.25,
                                    "kept": True}


def test_held_out_psnr_uses_the_steps_downscale():
    strip = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    held_out = HeldOut(strip, strip, "top")
    identity = torch.nn.Identity()
    same = held_out.psnr(identity, 1.0, lambda hr, out_size=None: hr)
    halved = held_out.psnr(identity, 2.0, make_downscale(2.0, None))
    assert same == 99.0 and halved < 40


def test_the_pipeline_reports_each_trained_steps_learning(tiny_config, make_image):
    image = make_image(72, 64)
    result = super_resolve(image, tiny_config.replace(learning_check=True, scale_times=2))
    assert result.learning is not None and [s["step"] for s in result.learning] == [1, 2]
    for step in result.learning:
        assert step["kept"] is (step["adapted_db"] > step["warm_start_db"])
    off = super_resolve(image, tiny_config)
    assert off.learning is None


def test_a_step_whose_learning_is_not_kept_enlarges_with_the_weights_it_started_from(tiny_config, make_image,
                                                                                     monkeypatch):
    """Learning judged worse: the result equals the one with training off (the warm start alone)."""
    import app.engine.zssr as zssr

    monkeypatch.setattr(zssr, "judge", lambda net, model, before, *args: (net.load_state_dict(before),
                                                                           Judgement(1, 20.0, 21.0))[1])
    image = make_image(72, 64)
    config = tiny_config.replace(learning_check=True)
    judged = super_resolve(image, config)
    untrained = super_resolve(image, config.replace(num_epochs=1, time_budget_s=1e-9))
    assert judged.iterations > 0 and untrained.iterations == 0
    assert judged.learning == ({"step": 1, "adapted_db": 20.0, "warm_start_db": 21.0, "gain_db": -1.0,
                                "kept": False},)
    assert np.array_equal(np.asarray(judged.image), np.asarray(untrained.image))


def test_training_never_sees_the_held_out_strip(tiny_config, make_image, monkeypatch):
    import app.engine.zssr as zssr

    seen = []
    original = zssr.FatherPool.build

    def spy(sources, *args, **kwargs):
        seen.append([tuple(s.shape[-2:]) for s in sources])
        return original(sources, *args, **kwargs)

    monkeypatch.setattr(zssr.FatherPool, "build", spy)
    image = make_image(72, 64)
    super_resolve(image, tiny_config.replace(learning_check=True))
    held_out = HeldOut.split(torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255)
    assert seen[0] == [tuple(held_out.train.shape[-2:])] and seen[0] != [(64, 72)]


def test_the_job_json_carries_the_choice_and_the_learning(tiny_config, two_weights, make_image):
    from app.jobs.model import Box, JobRequest
    from app.jobs.progress import ProgressTracker
    from app.jobs.work import run_zssr

    photo, clean = two_weights
    buffer = io.BytesIO()
    make_image(72, 64).save(buffer, format="JPEG", quality=85)
    data = buffer.getvalue()
    image = Image.open(io.BytesIO(data)).convert("RGB")
    request = JobRequest(photo_size=image.size, crop=Box(0, 0, 24, 24), crop_image=image.crop((0, 0, 24, 24)),
                         train_image=image, jpeg=JpegProfile.read(data), scale=2)
    config = auto(tiny_config, photo, clean, learning_check=True)
    tracker = ProgressTracker(1, config.num_epochs, None, 2.0)
    result = run_zssr(request, config, tracker, lambda: False).result
    assert (result.weights, result.weights_chosen_by) == ("photo.pt", "a JPEG input")
    assert result.learning is not None and result.learning[0]["step"] == 1
    depth, width = tiny_config.model_depth, tiny_config.model_width
    assert result.network == f"{depth} layers of {width}, on every pixel"


def test_a_strip_is_held_out_exactly_where_the_rest_still_makes_fathers():
    # MIN_STRIP (24) held out of 56 leaves exactly MIN_TRAIN_SIDE (32): allowed; of 55, not.
    assert HeldOut.split(torch.rand(1, 3, 56, 56)) is not None
    assert HeldOut.split(torch.rand(1, 3, 55, 55)) is None
