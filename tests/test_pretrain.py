"""Pre-training runs: planned over iterations, resumed exactly, recorded, exported; the photo degradation's JPEG
step (app.pretrain.PhotoDegradation)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from app import pretrain
from app.engine.warm_start import read_checkpoint, sha256
from app.jpeg_profile import JpegProfile

from tests.conftest import pattern


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "train" / "Tiny"
    folder.mkdir(parents=True)
    for i, (h, w) in enumerate([(40, 48), (36, 36), (44, 52)]):
        Image.fromarray(np.roll(pattern(h, w), 7 * i, axis=1)).save(folder / f"im{i}.png")
    return folder


def run(*args: str) -> int:
    return pretrain.main(["--threads", "1", *args])


def new_run(data, state, iterations: int, *extra: str) -> int:
    return run("--data", str(data), "--state", str(state), "--iterations", str(iterations), "--crop", "16",
               "--batch", "2", "--seed", "3", *extra)


def weights(path):
    return read_checkpoint(path)["state_dict"]


@pytest.mark.parametrize("photo", [False, True], ids=["clean", "photo"])
def test_a_run_stopped_and_resumed_ends_where_an_unbroken_run_ends(data, tmp_path, photo):
    extra = ("--photo",) if photo else ()
    assert new_run(data, tmp_path / "whole.pt", 6, *extra) == 0
    assert new_run(data, tmp_path / "broken.pt", 6, "--stop_at", "2", *extra) == 0
    assert read_checkpoint(tmp_path / "broken.pt")["progress"]["iteration"] == 2
    assert run("--resume", str(tmp_path / "broken.pt"), "--stop_at", "4") == 0
    assert run("--resume", str(tmp_path / "broken.pt")) == 0
    whole, broken = weights(tmp_path / "whole.pt"), weights(tmp_path / "broken.pt")
    assert all(torch.equal(whole[k], broken[k]) for k in whole)
    # Adam's moments came back too: the same optimizer state at the end.
    a = read_checkpoint(tmp_path / "whole.pt")["optimizer"]["state"]
    b = read_checkpoint(tmp_path / "broken.pt")["optimizer"]["state"]
    assert all(torch.equal(a[i]["exp_avg_sq"], b[i]["exp_avg_sq"]) for i in a)


def test_the_recipe_records_each_segment_and_the_plan(data, tmp_path):
    state = tmp_path / "run.pt"
    new_run(data, state, 4, "--stop_at", "3")
    run("--resume", str(state))
    recipe = read_checkpoint(state)["recipe"]
    assert [(s["start"], s["end"]) for s in recipe["segments"]] == [(0, 3), (3, 4)]
    assert all(s["device"].startswith("cpu") and s["seconds"] >= 0 for s in recipe["segments"])
    assert recipe["iterations"] == 4 and recipe["planned_iterations"] == 4 and recipe["complete"] is True
    assert recipe["data"] == [str(data)] and recipe["plan"]["crop"] == 16
    on_disk = json.loads(state.with_suffix(".json").read_text())
    assert on_disk["sha256"] == sha256(state) and on_disk["segments"] == recipe["segments"]


def test_a_stopped_run_is_not_complete(data, tmp_path):
    new_run(data, tmp_path / "run.pt", 5, "--stop_at", "2")
    assert read_checkpoint(tmp_path / "run.pt")["recipe"]["complete"] is False


def test_the_learning_rate_is_a_cosine_over_the_planned_iterations():
    plan = pretrain.Plan(data=[], iterations=100, lr=1e-3, lr_end=1e-5)
    assert plan.learning_rate(0) == pytest.approx(1e-3)
    assert plan.learning_rate(50) == pytest.approx((1e-3 + 1e-5) / 2)
    assert plan.learning_rate(100) == pytest.approx(1e-5)
    assert plan.learning_rate(150) == pytest.approx(1e-5)
    assert plan.learning_rate(25) > plan.learning_rate(26)


def test_a_warmup_climbs_linearly_to_the_cosine():
    cosine = pretrain.Plan(data=[], iterations=100, lr=1e-3, lr_end=1e-5)
    warm = pretrain.Plan(data=[], iterations=100, lr=1e-3, lr_end=1e-5, warmup=10)
    assert warm.learning_rate(0) == pytest.approx(cosine.learning_rate(0) / 10)
    assert warm.learning_rate(4) == pytest.approx(cosine.learning_rate(4) * 5 / 10)
    assert warm.learning_rate(9) == pytest.approx(cosine.learning_rate(9))
    assert all(warm.learning_rate(i) == cosine.learning_rate(i) for i in range(9, 120))
    assert [warm.learning_rate(i) < warm.learning_rate(i + 1) for i in range(9)] == [True] * 9


def test_a_batch_depends_on_the_seed_and_iteration_alone(data):
    folders = pretrain.image_folders([data])
    pool = pretrain.FatherPool.build(pretrain.load_sources(folders), 2.0, 16)
    plan = pretrain.Plan(data=[str(data)], iterations=10, crop=16, batch=3, photo=True, seed=5)
    make = pretrain.batch_maker(plan, pool)
    son, hr = make(4)
    make(7)  # drawing others in between changes nothing
    again_son, again_hr = pretrain.batch_maker(plan, pool)(4)
    assert torch.equal(son, again_son) and torch.equal(hr, again_hr)
    assert not torch.equal(hr, make(5)[1])
    assert son.shape == hr.shape == (3, 3, 16, 16)


def test_a_longer_plan_is_allowed_on_resume_and_a_shorter_one_refused(data, tmp_path):
    state = tmp_path / "run.pt"
    new_run(data, state, 3)
    with pytest.raises(SystemExit, match="shorten"):
        run("--resume", str(state), "--iterations", "2")
    assert run("--resume", str(state), "--iterations", "5") == 0
    assert read_checkpoint(state)["progress"]["iteration"] == 5


def test_export_writes_the_weights_alone_with_the_recipe(data, tmp_path):
    state, out = tmp_path / "run.pt", tmp_path / "w" / "zssr.pt"
    new_run(data, state, 2)
    assert run("--export", str(state), "--out", str(out)) == 0
    exported = read_checkpoint(out)
    assert "optimizer" not in exported and "progress" not in exported
    assert all(torch.equal(exported["state_dict"][k], v) for k, v in weights(state).items())
    assert json.loads(out.with_suffix(".json").read_text())["sha256"] == sha256(out)


def test_resuming_from_weights_alone_is_refused(data, tmp_path):
    state, out = tmp_path / "run.pt", tmp_path / "zssr.pt"
    new_run(data, state, 1)
    run("--export", str(state), "--out", str(out))
    with pytest.raises(SystemExit, match="weights alone"):
        run("--resume", str(out))


def test_a_run_starts_from_init_weights_and_records_them(data, tmp_path):
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    new_run(data, first, 2)
    new_run(data, second, 1, "--init", str(first), "--lr", "0")
    recipe = read_checkpoint(second)["recipe"]
    assert recipe["init"] == str(first) and recipe["continued_from"]["iterations"] == 2
    # A zero learning rate leaves the init weights as they were.
    assert all(torch.equal(weights(first)[k], v) for k, v in weights(second).items())


def test_a_run_keeps_the_design_it_started_with(data, tmp_path):
    """--fold/--depth/--width describe a new run's network; a resumed run, and one started from --init weights,
    keep the design their file records whatever the arguments say."""
    folded = tmp_path / "folded.pt"
    new_run(data, folded, 3, "--fold", "2", "--depth", "3", "--width", "12", "--stop_at", "1")
    arch = read_checkpoint(folded)["arch"]
    assert (arch["model_fold"], arch["model_depth"], arch["model_width"]) == (2, 3, 12)
    assert weights(folded)["layers.0.weight"].shape == (12, 12, 3, 3)  # 3 colours x 2x2 blocks in
    run("--resume", str(folded), "--fold", "1", "--depth", "5")
    assert read_checkpoint(folded)["arch"] == arch and read_checkpoint(folded)["progress"]["iteration"] == 3
    continued = tmp_path / "continued.pt"
    new_run(data, continued, 1, "--init", str(folded))
    assert read_checkpoint(continued)["arch"] == arch


def test_benchmark_sets_are_refused(tmp_path):
    folder = tmp_path / "Set14"
    folder.mkdir()
    Image.fromarray(pattern(32, 32)).save(folder / "a.png")
    with pytest.raises(SystemExit, match="benchmark"):
        new_run(folder, tmp_path / "run.pt", 1)


@pytest.mark.parametrize("args", [["--data", "x", "--iterations", "3"], ["--export", "x"],
                                  ["--resume", "x", "--iterations", "0"], ["--resume", "x", "--warmup", "-1"],
                                  ["--resume", "x", "--bicubic_share", "1.5"],
                                  ["--resume", "x", "--jpeg_share", "-0.1"]])
def test_incomplete_or_bad_arguments_are_usage_errors(args):
    with pytest.raises(SystemExit) as excinfo:
        pretrain.main(args)
    assert excinfo.value.code == 2


def test_a_signal_stops_the_run_with_its_state_saved(data, tmp_path, monkeypatch):
    import signal

    state = tmp_path / "run.pt"
    original = pretrain.batch_maker

    def interrupting(plan, pool, device=None):
        make = original(plan, pool, device)

        def made(iteration):
            if iteration == 2:
                signal.raise_signal(signal.SIGTERM)
            return make(iteration)

        return made

    monkeypatch.setattr(pretrain, "batch_maker", interrupting)
    assert new_run(data, state, 50) == 0
    reached = read_checkpoint(state)["progress"]["iteration"]
    assert 2 <= reached < 50


def test_each_jpeg_profile_is_made_once_and_compresses_as_a_fresh_one(monkeypatch):
    made = []
    standard = JpegProfile.standard

    def counted(quality: int, subsampling: int = 2) -> JpegProfile:
        made.append((quality, subsampling))
        return standard(quality, subsampling)

    monkeypatch.setattr(pretrain.JpegProfile, "standard", staticmethod(counted))
    degradation = pretrain.PhotoDegradation(2)
    lr = torch.rand(16, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    first = degradation._jpeg(lr, np.random.default_rng(3))
    again = degradation._jpeg(lr, np.random.default_rng(3))
    assert torch.equal(first, again)
    assert len(made) == len(set(made)) == len(degradation.profiles) > 1  # the second batch made none

    # The same draws, each crop through a profile made afresh.
    rng = np.random.default_rng(3)
    pixels = (lr * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    expected = []
    for image in pixels:
        if rng.random() < 0.75:
            image = standard(int(rng.integers(30, 96)), 2 if rng.random() < 0.7 else 0).roundtrip(image.copy())
        expected.append(image)
    assert torch.equal(first, torch.from_numpy(np.stack(expected)).permute(0, 3, 1, 2).float() / 255)


def test_a_cascade_son_is_the_step_befores_enlargement_of_the_father_made_small_twice(data, tmp_path):
    from app.engine.config import EngineConfig
    from app.engine.network import ZSSRNet
    from app.engine.pairs import lr_son, make_downscale, upscale
    from app.engine.warm_start import save_weights

    torch.manual_seed(0)
    before = ZSSRNet(EngineConfig())
    torch.nn.init.normal_(before.layers[-1].weight, 0.0, 0.01)
    save_weights(before, EngineConfig(), tmp_path / "before.pt", recipe={"scale_factor": 2.0})
    folders = pretrain.image_folders([data])
    pool = pretrain.FatherPool.build(pretrain.load_sources(folders), 2.0, 16)
    plan = pretrain.Plan(data=[str(data)], iterations=4, crop=18, batch=2, seed=1, cascade=str(tmp_path / "before.pt"))
    son, hr = pretrain.batch_maker(plan, pool)(3)
    assert hr.shape[-1] % 4 == 0  # whole pixels at both smaller sizes
    # By hand: the same draws, the father made small, its son enlarged by the step before, then bicubic.
    rng = np.random.default_rng([1, 3])
    generator = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
    assert torch.equal(hr, pool.sample(rng, 18, 2, 4))
    downscale = make_downscale(2.0, None)
    middle = downscale(hr).clamp(0, 1)
    with torch.no_grad():
        enlarged = before.eval()(lr_son(middle, 2.0, downscale, 0.0, generator)).clamp(0, 1)
    assert torch.equal(son, upscale(enlarged, 2.0, tuple(hr.shape[-2:])))
    assert "cascade" in plan.degradation() and "before.pt" in plan.degradation()


TRAINING = pretrain.Path(__file__).resolve().parent.parent / "app" / "engine" / "weights" / "training"


@pytest.mark.parametrize("state", sorted(TRAINING.glob("*.pt")), ids=lambda p: p.stem)
def test_committed_training_states_match_their_record_and_resume(state):
    """The runs carried from session to session: checksum as recorded, on training sets only, resumable."""
    record = json.loads(state.with_suffix(".json").read_text())
    assert sha256(state) == record["sha256"]
    checkpoint = read_checkpoint(state)
    assert checkpoint["progress"]["iteration"] == record["iterations"] > 0
    assert {pretrain.Path(d).name for d in record["data"]} <= {"train", "T91", "General100", "BSD200"}
    assert sum(s["end"] - s["start"] for s in record["segments"]) == record["iterations"]
    plan = pretrain.Plan(**record["plan"])
    assert plan.learning_rate(record["iterations"]) <= plan.lr


def test_a_cascade_margin_gives_the_step_before_context_the_loss_does_not_see(data, tmp_path):
    from app.engine.config import EngineConfig
    from app.engine.network import ZSSRNet
    from app.engine.warm_start import save_weights

    torch.manual_seed(0)
    before = ZSSRNet(EngineConfig())
    torch.nn.init.normal_(before.layers[-1].weight, 0.0, 0.01)
    save_weights(before, EngineConfig(), tmp_path / "before.pt", recipe={"scale_factor": 2.0})
    pool = pretrain.FatherPool.build(pretrain.load_sources(pretrain.image_folders([data])), 2.0, 32)
    common = dict(data=[str(data)], iterations=4, batch=2, seed=1, cascade=str(tmp_path / "before.pt"))
    with_margin = pretrain.Plan(crop=16, cascade_margin=8, **common)
    assert with_margin.father_side == 32
    son, hr = pretrain.batch_maker(with_margin, pool)(2)
    whole_son, whole_hr = pretrain.batch_maker(pretrain.Plan(crop=32, **common), pool)(2)
    assert son.shape == hr.shape == (2, 3, 16, 16)
    assert torch.equal(hr, whole_hr[..., 8:-8, 8:-8]) and torch.equal(son, whole_son[..., 8:-8, 8:-8])


def test_a_cascade_margin_that_splits_pixels_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as excinfo:
        pretrain.main(["--data", "x", "--state", "s", "--iterations", "1", "--cascade", "w.pt",
                       "--cascade_margin", "6"])
    assert excinfo.value.code == 2


def test_the_photo_shares_choose_bicubic_or_blur_and_jpeg_or_none_per_crop():
    from app.engine.pairs import make_downscale, upscale

    hr = torch.rand(6, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    bicubic = upscale(make_downscale(2.0, None)(hr), 2.0, (24, 24))

    def distance_from_bicubic(bicubic_share: float) -> list[float]:
        son = pretrain.PhotoDegradation(2, bicubic_share, 0.0)(hr, np.random.default_rng(5),
                                                                 torch.Generator().manual_seed(5))
        return [float((son[i] - bicubic[i]).abs().mean()) for i in range(6)]

    # Every crop bicubic: the clean son but for the noise half of them get (std at most 0.02); every crop
    # blurred: a Gaussian blur's son, far from it on white noise.
    assert max(distance_from_bicubic(1.0)) < 0.015 < min(distance_from_bicubic(0.0))
    # None compressed: the crops' 8-bit values; all compressed: each through a JPEG.
    lr = hr[:, :, :12, :12]
    compressed = {share: pretrain.PhotoDegradation(2, 1.0, share)._jpeg(lr, np.random.default_rng(1))
                  for share in (0.0, 1.0)}
    assert torch.equal(compressed[0.0], (lr * 255).round() / 255)
    assert all(not torch.equal(compressed[1.0][i], compressed[0.0][i]) for i in range(6))


def test_the_photo_shares_are_planned_recorded_and_kept_on_resume(data, tmp_path):
    state = tmp_path / "run.pt"
    new_run(data, state, 4, "--photo", "--bicubic_share", "0.5", "--jpeg_share", "0.9", "--stop_at", "2")
    run("--resume", str(state), "--bicubic_share", "0.1")  # a new run's argument: the plan keeps its own
    recipe = read_checkpoint(state)["recipe"]
    assert recipe["plan"]["bicubic_share"] == 0.5 and recipe["plan"]["jpeg_share"] == 0.9
    assert recipe["degradation"].startswith("per crop: 50% MATLAB bicubic") and "on 90%" in recipe["degradation"]
    # A run from before the shares were recorded reads as the shares it had.
    old = {k: v for k, v in recipe["plan"].items() if k not in ("bicubic_share", "jpeg_share")}
    assert pretrain.Plan(**old).photo_degradation().recipe().startswith("per crop: 25% MATLAB bicubic")
    assert "on 75%" in pretrain.Plan(**old).photo_degradation().recipe()
