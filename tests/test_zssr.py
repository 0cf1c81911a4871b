"""The pipeline: output sizes per gradual step, colour modes, callbacks, seeds, warm start and compile."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from PIL import Image

import app.engine.compiled as compiled
import app.engine.zssr as zssr
from app.engine import bicubic_resize, super_resolve
from app.engine.image_io import to_planes
from app.engine.network import ZSSRNet
from app.engine.resize import imresize
from app.engine.warm_start import load_weights, save_weights
from app.engine.zssr import build_model, describe_network
from app.errors import BadImageError, Cancelled, ConfigError
from tests.conftest import TEST_DEVICE


def expected_size(width: int, height: int, scale: float, times: int) -> tuple[int, int]:
    for _ in range(times):
        width, height = math.ceil(width * scale - 1e-9), math.ceil(height * scale - 1e-9)
    return width, height


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


@pytest.mark.parametrize("size, times", [((23, 17), 1), ((11, 7), 2), ((9, 6), 3)])
def test_output_size_per_gradual_step(tiny_config, make_image, size, times):
    config = tiny_config.replace(scale_times=times, num_epochs=3)
    result = super_resolve(make_image(*size), config)
    assert result.image.size == expected_size(*size, 2.0, times)
    assert result.image.size == (size[0] * 2 ** times, size[1] * 2 ** times)
    assert result.image.mode == "RGB"
    assert result.iterations_per_step == (3,) * times and result.iterations == 3 * times
    assert result.device.startswith(TEST_DEVICE) and not result.budget_exhausted and result.seconds > 0


@pytest.mark.parametrize("scale, size", [(3.0, (10, 7)), (1.5, (12, 8)), (1.5, (10, 7))])
def test_output_size_for_other_scale_factors(tiny_config, make_image, scale, size):
    config = tiny_config.replace(scale_factor=scale, num_epochs=3)
    assert super_resolve(make_image(*size), config).image.size == expected_size(*size, scale, 1)


def test_the_ensemble_path_runs_end_to_end(tiny_config, rgb_image):
    config = tiny_config.replace(self_ensemble=True, back_projection_iters=3, scale_times=2)
    result = super_resolve(rgb_image, config)
    assert result.image.size == (96, 72)
    # Throughput bookkeeping: 8 views of each step's output, at 2 * sum(c_in * c_out * k * k) FLOPs a pixel.
    flops_per_pixel = 2 * (3 * 8 * 9 + 8 * 3 * 9)
    assert result.infer_gflop == pytest.approx(flops_per_pixel * 8 * (48 * 36 + 96 * 72) / 1e9)
    assert result.train_gflop > 0 and result.train_seconds > 0 and result.infer_seconds > 0
    assert result.train_seconds + result.infer_seconds <= result.seconds


@pytest.mark.parametrize("steps, expected", [(None, [True, True, True]), (3, [True, True, True]),
                                             (2, [True, True, False]), (1, [True, False, False])])
def test_ensemble_steps_ensembles_only_the_first_steps(tiny_config, rgb_image, monkeypatch, steps, expected):
    """Steps of 48x36, 96x72 and 192x144 outputs: only the first `steps` ensemble, and the throughput
    bookkeeping counts 8 views for those steps only."""
    seen = []
    original = zssr.enlarge

    def spy(*args, **kwargs):
        seen.append(kwargs["ensemble"])
        return original(*args, **kwargs)

    monkeypatch.setattr(zssr, "enlarge", spy)
    config = tiny_config.replace(self_ensemble=True, ensemble_steps=steps, scale_times=3, num_epochs=2)
    result = super_resolve(rgb_image, config)
    assert seen == expected
    flops_per_pixel = 2 * (3 * 8 * 9 + 8 * 3 * 9)
    pixels = [48 * 36, 96 * 72, 192 * 144]
    views = sum((8 if e else 1) * p for e, p in zip(expected, pixels))
    assert result.infer_gflop == pytest.approx(flops_per_pixel * views / 1e9)


def test_ensemble_steps_needs_self_ensemble(tiny_config, rgb_image, monkeypatch):
    seen = []
    original = zssr.enlarge
    monkeypatch.setattr(zssr, "enlarge", lambda *a, **k: seen.append(k["ensemble"]) or original(*a, **k))
    super_resolve(rgb_image, tiny_config.replace(self_ensemble=False, ensemble_steps=1, num_epochs=2))
    assert seen == [False]


def test_tiled_pipeline_matches_whole(tiny_config, make_image):
    image = make_image(24, 20)
    config = tiny_config.replace(self_ensemble=True)
    whole = super_resolve(image, config.replace(patch_size=512)).image
    tiled = super_resolve(image, config.replace(patch_size=32)).image  # 48x40 output: several tiles
    assert np.abs(pixels(whole) - pixels(tiled)).max() <= 1


def test_grayscale_in_grayscale_out(tiny_config, gray_image):
    result = super_resolve(gray_image, tiny_config)
    assert result.image.mode == "L"
    assert result.image.size == (42, 28)


def test_grayscale_output_is_the_mean_of_the_networks_three_channels(tiny_config, gray_image, tmp_path):
    # An L image runs through the RGB network as three equal planes; the result is their mean. A random last
    # layer (the default starts at zero) makes the network's three output channels differ.
    net = ZSSRNet(tiny_config)
    torch.manual_seed(3)
    torch.nn.init.normal_(net.layers[-1].weight, 0.0, 0.3)
    save_weights(net, tiny_config, tmp_path / "random.pt", recipe={})
    config = tiny_config.replace(num_epochs=2, lr=1e-5, warm_start=str(tmp_path / "random.pt"))
    gray = pixels(super_resolve(gray_image, config).image)
    rgb = pixels(super_resolve(gray_image.convert("RGB"), config).image)
    assert np.abs(rgb[..., 0] - rgb[..., 2]).max() > 1  # the network's channels do differ
    assert np.abs(gray - rgb.mean(axis=2)).max() <= 1


def test_gradual_steps_continue_training_with_earlier_outputs_as_fathers(tiny_config, rgb_image, monkeypatch):
    real_train = zssr.train
    seen = []

    def recording_train(net, pool, probe, config, **kwargs):
        start = [p.detach().clone() for p in net.parameters()]
        result = real_train(net, pool, probe, config, **kwargs)
        end = [p.detach().clone() for p in net.parameters()]
        seen.append((sorted({tuple(f.shape[-2:]) for f in pool.fathers}), start, end))
        return result

    monkeypatch.setattr(zssr, "train", recording_train)
    super_resolve(rgb_image, tiny_config.replace(scale_times=3))
    assert len(seen) == 3
    largest = [max(shapes) for shapes, _, _ in seen]
    assert largest == [(18, 24), (36, 48), (72, 96)]  # each step adds the previous step's output
    assert (18, 24) in seen[2][0] and (36, 48) in seen[2][0]  # and keeps the earlier ones
    for (_, _, end), (_, start, _) in zip(seen, seen[1:]):
        assert all(torch.equal(a, b) for a, b in zip(end, start))  # from the previous step's weights


def test_grayscale_with_a_luma_network(tiny_config, gray_image):
    result = super_resolve(gray_image, tiny_config.replace(in_channels=1))
    assert result.image.mode == "L" and result.image.size == (42, 28)


def test_rgba_keeps_alpha_enlarged_bicubically(tiny_config, rgba_image):
    result = super_resolve(rgba_image, tiny_config)
    assert result.image.mode == "RGBA" and result.image.size == (40, 30)
    alpha = torch.from_numpy(np.asarray(rgba_image.getchannel("A"), dtype=np.float32) / 255.0)
    expected = (imresize(alpha, 2.0).clamp(0, 1) * 255).round().numpy().astype(np.int16)
    assert np.abs(pixels(result.image.getchannel("A")) - expected).max() <= 1
    # The colour planes are enlarged as if there were no alpha at all.
    plain = super_resolve(rgba_image.convert("RGB"), tiny_config).image
    assert np.array_equal(pixels(result.image.convert("RGB")), pixels(plain))


def test_gray_with_alpha_and_palette_with_transparency(tiny_config, make_image):
    la = make_image(14, 10, "RGBA").convert("LA")
    result = super_resolve(la, tiny_config)
    assert result.image.mode == "LA" and result.image.size == (28, 20)
    palette = make_image(14, 10).convert("P")
    palette.info["transparency"] = 0
    assert super_resolve(palette, tiny_config).image.mode == "RGBA"


def test_luma_network_on_a_colour_image(tiny_config, rgb_image):
    result = super_resolve(rgb_image, tiny_config.replace(in_channels=1))
    assert result.image.mode == "RGB" and result.image.size == (48, 36)
    # Chroma is carried over bicubically: the colours stay those of the bicubic enlargement.
    bicubic = pixels(bicubic_resize(rgb_image, 2.0)).astype(np.float64)
    assert np.abs(pixels(result.image) - bicubic).mean() < 12


def test_luma_network_keeps_a_gray_rgb_image_gray(tiny_config, gray_image):
    result = super_resolve(gray_image.convert("RGB"), tiny_config.replace(in_channels=1))
    rgb = pixels(result.image)
    assert np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 2 and np.abs(rgb[..., 2] - rgb[..., 1]).max() <= 2


def test_train_image_is_what_the_network_learns_from(tiny_config, make_image):
    image = make_image(16, 12)
    other = Image.fromarray(np.asarray(make_image(30, 26))[::-1, ::-1].copy())
    config = tiny_config.replace(num_epochs=20, lr=0.01)
    own = super_resolve(image, config)
    trained_elsewhere = super_resolve(image, config, train_image=other)
    assert trained_elsewhere.image.size == own.image.size == (32, 24)
    assert not np.array_equal(pixels(own.image), pixels(trained_elsewhere.image))
    # A grayscale training image for a colour input is accepted too.
    assert super_resolve(image, config.replace(num_epochs=2), train_image=other.convert("L")).image.size == (32, 24)


def test_callbacks_see_every_step_and_iteration(tiny_config, rgb_image):
    config = tiny_config.replace(scale_times=2, num_epochs=4)
    steps, phases = [], []
    super_resolve(rgb_image, config, on_step=lambda *a: steps.append(a),
                  on_phase=lambda step, phase: phases.append((step, phase)))
    assert [(s, i) for s, i, _, _ in steps] == [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 2), (2, 3), (2, 4)]
    assert all(loss >= 0 and lr > 0 for _, _, loss, lr in steps)
    assert phases == [(1, "training"), (1, "enlarging"), (2, "training"), (2, "enlarging")]


def test_should_stop_cancels(tiny_config, rgb_image):
    with pytest.raises(Cancelled):
        super_resolve(rgb_image, tiny_config, should_stop=lambda: True)


def test_time_budget_is_reported(tiny_config, rgb_image):
    config = tiny_config.replace(num_epochs=1_000_000, min_iters=1_000_000, time_budget_s=0.3, scale_times=2)
    result = super_resolve(rgb_image, config)
    assert result.budget_exhausted
    assert result.image.size == (96, 72)
    assert all(n < 1_000_000 for n in result.iterations_per_step)


def test_same_seed_same_output(tiny_config, rgb_image):
    config = tiny_config.replace(noise_std=0.02, num_epochs=8)
    first = super_resolve(rgb_image, config).image
    second = super_resolve(rgb_image, config).image
    assert np.array_equal(pixels(first), pixels(second))
    other = super_resolve(rgb_image, config.replace(seed=1)).image
    assert not np.array_equal(pixels(first), pixels(other))


def test_tiny_images_are_refused(tiny_config):
    with pytest.raises(BadImageError):
        super_resolve(Image.new("RGB", (3, 10)), tiny_config)


def test_a_blur_kernel_makes_the_sons(tiny_config, rgb_image, tmp_path):
    t = np.arange(5) - 2.0
    kernel = np.outer(np.exp(-t ** 2 / 2), np.exp(-t ** 2 / 2))
    np.save(tmp_path / "k.npy", kernel)
    config = tiny_config.replace(kernel=str(tmp_path / "k.npy"))
    with_kernel = super_resolve(rgb_image, config).image
    assert with_kernel.size == (48, 36)
    assert not np.array_equal(pixels(with_kernel), pixels(super_resolve(rgb_image, tiny_config).image))
    with pytest.raises(ConfigError) as excinfo:
        super_resolve(rgb_image, config.replace(scale_factor=1.5))
    assert excinfo.value.key == "kernel"


def test_warm_start_round_trip(tiny_config, tmp_path):
    torch.manual_seed(0)
    trained = ZSSRNet(tiny_config)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.1 * torch.randn_like(p))
    path = tmp_path / "w.pt"
    save_weights(trained, tiny_config, path, recipe={"note": "test"})
    torch.manual_seed(1)
    fresh = ZSSRNet(tiny_config)
    x = torch.rand(1, 3, 12, 10)
    assert not torch.equal(fresh(x), trained(x))
    checkpoint = load_weights(fresh, path)
    assert checkpoint["recipe"] == {"note": "test"}
    assert torch.equal(fresh(x), trained(x))


def test_warm_start_is_used_by_the_pipeline(tiny_config, rgb_image, tmp_path):
    torch.manual_seed(3)
    net = ZSSRNet(tiny_config)
    path = tmp_path / "w.pt"
    save_weights(net, tiny_config, path, recipe={})
    model_net, _ = build_model(tiny_config.replace(warm_start=str(path), seed=7), torch.device("cpu"))
    for a, b in zip(model_net.state_dict().values(), net.state_dict().values()):
        assert torch.equal(a, b)
    config = tiny_config.replace(warm_start=str(path), num_epochs=2)
    assert super_resolve(rgb_image, config).image.size == (48, 36)


ARCH_CHANGES = [{"model_depth": 3}, {"model_width": 16}, {"in_channels": 1}, {"model_kernel_size": 5},
                {"model_fold": 2}]


@pytest.mark.parametrize("change", ARCH_CHANGES)
def test_weights_do_not_load_into_another_architecture(tiny_config, tmp_path, change):
    path = tmp_path / "w.pt"
    save_weights(ZSSRNet(tiny_config), tiny_config, path, recipe={})
    with pytest.raises(ConfigError) as excinfo:
        load_weights(ZSSRNet(tiny_config.replace(**change)), path)
    assert excinfo.value.key == "warm_start"


@pytest.mark.parametrize("change", ARCH_CHANGES)
def test_a_warm_start_is_built_into_the_network_its_file_records(tiny_config, rgb_image, tmp_path, change):
    """The file's design wins over the config's model_* keys: the run is the one its own design would make."""
    trained = tiny_config.replace(**change)
    torch.manual_seed(3)
    net = ZSSRNet(trained)
    torch.nn.init.normal_(net.layers[-1].weight, 0.0, 0.05)
    path = tmp_path / "w.pt"
    save_weights(net, trained, path, recipe={})
    config = dict(warm_start=str(path), num_epochs=2, seed=1)
    as_recorded = super_resolve(rgb_image, trained.replace(**config))
    as_configured = super_resolve(rgb_image, tiny_config.replace(**config))
    assert as_configured.networks == as_recorded.networks == (describe_network(net),)
    assert np.array_equal(np.asarray(as_configured.image), np.asarray(as_recorded.image))


@pytest.mark.parametrize("content", [None, b"", b"not a checkpoint at all" * 20], ids=["missing", "empty", "junk"])
def test_unreadable_warm_start_is_a_config_error(tiny_config, tmp_path, content):
    path = tmp_path / "w.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as excinfo:
        load_weights(ZSSRNet(tiny_config), path)
    assert excinfo.value.key == "warm_start"


@pytest.fixture
def light_compile(monkeypatch):
    """torch.compile with the aot_eager backend: Dynamo capture, dynamic shapes and AOT autograd as in production,
    without Inductor's C++ code generation, which takes 30-50 s of a cold two-core machine per run."""
    real_compile = torch.compile

    def compile_aot_eager(model, **kwargs):
        return real_compile(model, **{**kwargs, "backend": "aot_eager"})

    monkeypatch.setattr(torch, "compile", compile_aot_eager)
    yield
    torch._dynamo.reset()


def test_compile_gives_the_eager_result(tiny_config, make_image, light_compile, caplog):
    image = make_image(12, 10)
    config = tiny_config.replace(num_epochs=3, self_ensemble=True)
    _, model = build_model(config.replace(compile=True), torch.device("cpu"))
    assert isinstance(model, torch._dynamo.eval_frame.OptimizedModule)  # compiled, not the eager fallback
    eager = super_resolve(image, config)
    with caplog.at_level(logging.WARNING, logger="app.engine.compiled"):
        compiled_result = super_resolve(image, config.replace(compile=True))
    assert "running eagerly" not in caplog.text
    assert compiled_result.image.size == eager.image.size
    assert compiled_result.iterations == eager.iterations
    assert np.abs(pixels(compiled_result.image) - pixels(eager.image)).max() <= 1


def test_compile_falls_back_to_eager(tiny_config, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    net = ZSSRNet(tiny_config)
    with caplog.at_level(logging.WARNING, logger="app.engine.compiled"):
        assert compiled.compile_or_eager(net, tiny_config, torch.device("cpu")) is net
    assert "no compiler here" in caplog.text
    assert all(p.grad is None for p in net.parameters())


def test_to_planes_handles_common_modes():
    assert to_planes(Image.new("P", (4, 5))).colour.shape == (1, 3, 5, 4)
    assert to_planes(Image.new("1", (4, 5))).grayscale
    la = to_planes(Image.new("LA", (4, 5), (10, 20)))
    assert la.grayscale and la.alpha is not None and float(la.alpha.max()) == pytest.approx(20 / 255)


def test_untrained_network_is_the_identity(tiny_config):
    """A zero last layer: before any training the network returns its (bicubic) input unchanged."""
    net = ZSSRNet(tiny_config)
    x = torch.rand(1, 3, 12, 9)
    torch.testing.assert_close(net(x), x)


def harmful_weights(config, path):
    """Weights whose output is the input plus a large constant: far worse than bicubic on any image."""
    net = ZSSRNet(config)
    with torch.no_grad():
        net.layers[-1].bias.fill_(0.4)
    save_weights(net, config, path, recipe={})
    return str(path)


def test_the_self_check_is_reported_and_measures_the_network_against_bicubic(tiny_config, rgb_image, tmp_path):
    result = super_resolve(rgb_image, tiny_config.replace(num_epochs=30))
    check = result.self_check
    assert set(check) == {"zssr_db", "bicubic_db"} and not result.fallback
    assert 10 < check["bicubic_db"] < 99 and check["zssr_db"] > 0
    bad = super_resolve(rgb_image, tiny_config.replace(warm_start=harmful_weights(tiny_config, tmp_path / "w.pt"),
                                                      num_epochs=1, lr=1e-9))
    assert bad.self_check["zssr_db"] < bad.self_check["bicubic_db"] - 3
    assert bad.self_check["bicubic_db"] == pytest.approx(check["bicubic_db"], abs=1e-6)  # the same probe


def test_a_network_behind_bicubic_on_the_photo_falls_back_to_bicubic(tiny_config, rgb_image, tmp_path):
    config = tiny_config.replace(warm_start=harmful_weights(tiny_config, tmp_path / "w.pt"), num_epochs=1, lr=1e-9,
                                 scale_times=2)
    kept = super_resolve(rgb_image, config)
    assert not kept.fallback and kept.iterations_per_step == (1, 1)
    fallen = super_resolve(rgb_image, config.replace(self_check_fallback=True))
    assert fallen.fallback and fallen.iterations_per_step == (1,)  # no second step is trained
    np.testing.assert_array_equal(pixels(fallen.image), pixels(bicubic_resize(rgb_image, 4.0)))
    assert not np.array_equal(pixels(kept.image), pixels(fallen.image))
    assert fallen.image.size == kept.image.size == (96, 72)


def test_a_fallback_to_bicubic_reports_no_ensembled_step(tiny_config, rgb_image, tmp_path):
    """Growing x2 through x(1, 2): the one-axis first step enlarges (over its 4 axis-keeping transforms) before
    the self-check at the second step hands back bicubic, whose image no ensemble made."""
    config = tiny_config.replace(warm_start=harmful_weights(tiny_config, tmp_path / "w.pt"), num_epochs=1, lr=1e-9,
                                 self_ensemble=True, gradual_mode="grow", gradual_scales=((1.0, 2.0), (2.0, 2.0)))
    kept = super_resolve(rgb_image, config)
    assert not kept.fallback and kept.ensembled_steps == 2
    fallen = super_resolve(rgb_image, config.replace(self_check_fallback=True))
    assert fallen.fallback and fallen.iterations_per_step == (1, 1) and fallen.ensembled_steps == 0


def test_later_weights_of_another_design_run_in_their_own_network(tiny_config, rgb_image, tmp_path):
    """A later step whose file records another design switches to a network of that design (the first step's
    network is not reused), and the result names both."""
    later_config = tiny_config.replace(model_fold=2, model_width=12)
    torch.manual_seed(5)
    later = ZSSRNet(later_config)
    torch.nn.init.normal_(later.layers[-1].weight, 0.0, 0.05)
    path = tmp_path / "later.pt"
    save_weights(later, later_config, path, recipe={})
    config = tiny_config.replace(scale_times=2, num_epochs=1, later_warm_start=str(path), seed=0)
    result = super_resolve(rgb_image, config)
    assert result.networks == (describe_network(ZSSRNet(tiny_config)), describe_network(later))
    assert result.image.size == (rgb_image.width * 4, rgb_image.height * 4)
    with_first = super_resolve(rgb_image, config.replace(later_warm_start=None))
    assert not np.array_equal(np.asarray(result.image), np.asarray(with_first.image))


def test_later_weights_that_see_other_planes_are_a_config_error(tiny_config, rgb_image, tmp_path):
    luma = tiny_config.replace(in_channels=1)
    path = tmp_path / "later.pt"
    save_weights(ZSSRNet(luma), luma, path, recipe={})
    with pytest.raises(ConfigError, match="1 channels, the first step's network 3") as excinfo:
        super_resolve(rgb_image, tiny_config.replace(scale_times=2, num_epochs=1, later_warm_start=str(path)))
    assert excinfo.value.key == "later_warm_start"
