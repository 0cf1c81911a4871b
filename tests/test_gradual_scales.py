"""`gradual_scales`: the authors' gradual x2, six steps that grow the input itself through x1.5 on one axis, then
the other, to x2. Scales per axis run through resizing, sons, the ensemble and the steps."""

from __future__ import annotations

import json
import time

import pytest
import torch

import app.engine.zssr as zssr
from app.engine import super_resolve
from app.engine.config import EngineConfig
from app.engine.dihedral import ALL, keeps_axes
from app.engine.infer import enlarge
from app.engine.pairs import lr_son, make_downscale
from app.engine.presets import AUTHORS_GRADUAL_X2, preset_config
from app.engine.network import ZSSRNet
from app.engine.resize import imresize
from app.engine.train import ReconstructionProbe, SelfCheck
from app.errors import ConfigError


def test_a_scale_per_axis_resizes_each_axis_by_its_own():
    x = torch.rand(1, 3, 10, 12, dtype=torch.float64)
    wide = imresize(x, (1.0, 1.5))
    assert wide.shape[-2:] == (10, 18)
    # The same resize with the axes swapped, and the two axes one after the other make the isotropic resize.
    assert torch.allclose(wide, imresize(x.transpose(-1, -2), (1.5, 1.0)).transpose(-1, -2), atol=1e-12)
    assert torch.allclose(imresize(wide, (1.5, 1.0)), imresize(x, 1.5), atol=1e-12)
    assert torch.equal(imresize(x, (2.0, 2.0)), imresize(x, 2.0))


def test_sons_at_a_scale_per_axis_shrink_each_axis_by_its_own():
    father = torch.rand(1, 3, 12, 12)
    downscale = make_downscale((1.5, 1.0), None)
    assert downscale(father).shape[-2:] == (8, 12)
    assert torch.allclose(downscale(torch.full((1, 1, 12, 12), 0.3)), torch.tensor(0.3), atol=1e-6)
    son = lr_son(father, (1.5, 1.0), downscale, noise_std=0.0)
    assert son.shape == father.shape
    small = imresize(father, (1 / 1.5, 1.0)).clamp(0, 1)
    assert torch.allclose(son, imresize(small, (1.5, 1.0), out_size=(12, 12)))


def test_transforms_that_keep_the_axes():
    assert tuple(i for i in ALL if keeps_axes(i)) == (0, 2, 4, 6)


@pytest.mark.parametrize("scale, calls", [((1.0, 1.5), 4), ((2.0, 2.0), 8), (2.0, 8)])
def test_the_ensemble_skips_the_transforms_that_would_swap_the_axes_scales(scale, calls):
    lr = torch.rand(1, 3, 9, 14)
    seen = []

    def net(x):
        seen.append(tuple(x.shape[-2:]))
        return x

    sy, sx = scale if isinstance(scale, tuple) else (scale, scale)
    out = enlarge(net, lr, scale, make_downscale(scale, None), patch_size=512, halo=2, ensemble=True,
                  back_projection_iters=2)
    size = (-(-9 * sy // 1), -(-14 * sx // 1))
    assert out.shape[-2:] == tuple(int(n) for n in size)
    assert len(seen) == calls
    if sy != sx:  # every network input is the enlarged image the right way up, none turned a quarter
        assert set(seen) == {tuple(out.shape[-2:])}


def record(monkeypatch):
    seen = {"train": [], "enlarge": []}
    real_train, real_enlarge = zssr.train, zssr.enlarge

    def train(model, pool, probe, config, **kwargs):
        probe_input = torch.zeros(1, 3, 12, 12)
        seen["train"].append((kwargs["scale_factor"], [tuple(f.shape[-2:]) for f in pool.fathers],
                              tuple(kwargs["downscale"](probe_input).shape[-2:])))
        return real_train(model, pool, probe, config, **kwargs)

    def enlarge(net, lr, scale_factor, *args, **kwargs):
        seen["enlarge"].append((tuple(lr.shape[-2:]), scale_factor))
        return real_enlarge(net, lr, scale_factor, *args, **kwargs)

    monkeypatch.setattr(zssr, "train", train)
    monkeypatch.setattr(zssr, "enlarge", enlarge)
    return seen


def test_the_authors_gradual_x2_grows_the_input_step_by_step(tiny_config, rgb_image, monkeypatch):
    seen = record(monkeypatch)
    h, w = rgb_image.height, rgb_image.width
    config = tiny_config.replace(gradual_mode="grow", gradual_scales=AUTHORS_GRADUAL_X2, self_ensemble=True)
    result = super_resolve(rgb_image, config)
    assert result.image.size == (2 * w, 2 * h)
    assert len(result.iterations_per_step) == 6
    steps = [(1.0, 1.5), (1.5, 1.0), 1.5, (1.5, 2.0), (2.0, 1.5), 2.0]
    # Every step enlarges the input itself, by its own total scale.
    assert seen["enlarge"] == [((h, w), s) for s in steps]
    scales, fathers, son_sizes = zip(*seen["train"])
    assert list(scales) == steps
    # Each step's sons are its own scale below the fathers (a 12 x 12 father's son), the last one's x2 on both.
    assert list(son_sizes) == [(12, 8), (8, 12), (8, 8), (8, 6), (6, 8), (6, 6)]
    # The earlier outputs join the fathers: step 2 learns from step 1's (h, 1.5 w) output, step 6 from all five.
    assert (h, 3 * w // 2) in fathers[1] and (h, 3 * w // 2) not in fathers[0]
    assert {(h, 3 * w // 2), (3 * h // 2, w), (3 * h // 2, 3 * w // 2), (3 * h // 2, 2 * w),
            (2 * h, 3 * w // 2)} <= set(fathers[5])


def test_gradual_scales_from_a_config_file_and_its_refusals(tiny_config):
    loaded = tiny_config.replace(gradual_mode="grow", **json.loads('{"gradual_scales": [[1, 1.5], [2, 2]]}'))
    assert loaded.gradual_scales == ((1.0, 1.5), (2.0, 2.0))
    assert loaded.steps == ((1.0, 1.5), (2.0, 2.0))
    assert tiny_config.replace(scale_times=2).steps == ((2.0, 2.0), (2.0, 2.0))
    assert tiny_config.replace(scale_times=2, gradual_mode="grow").steps == ((2.0, 2.0), (4.0, 4.0))
    grow = tiny_config.replace(gradual_mode="grow")
    refused = {
        "the last step must be the total scale": {"gradual_scales": [[1, 1.5]]},
        "enlarges nothing": {"gradual_scales": [[1, 1], [2, 2]]},
        "needs gradual_mode grow": {"gradual_scales": [[2, 2]], "gradual_mode": "chain"},
        "at most the total scale": {"gradual_scales": [[3, 1], [2, 2]]},
        "expected a list of 2": {"gradual_scales": [[1, 2, 3], [2, 2]]},
        "at least 1 and": {"gradual_scales": [[0.5, 2], [2, 2]]},
        "listed twice": {"gradual_scales": [[2, 2], [2, 2]]},
        "listed twice: \\[\\[1.0, 2.0\\]\\]": {"gradual_scales": [[1, 2], [2, 1], [1, 2], [2, 2]]},
        "cannot be used with kernel": {"gradual_scales": [[2, 2]], "kernel": "k.npy"},
    }
    for message, change in refused.items():
        with pytest.raises(ConfigError, match=f"gradual_scales.*{message}"):
            grow.replace(**change)


def test_the_paper_gradual_preset_is_the_authors_six_steps_at_x2_and_grows_at_other_scales():
    config = preset_config("paper-gradual", EngineConfig(), scale_factor=2.0, scale_times=1)
    assert config.gradual_mode == "grow" and len(config.steps) == 6
    assert preset_config("paper", config).gradual_scales is None  # `paper` undoes it
    x4 = preset_config("paper-gradual", EngineConfig(), scale_factor=2.0, scale_times=2)
    assert (x4.gradual_mode, x4.steps) == ("grow", ((2.0, 2.0), (4.0, 4.0)))
    # The scale is resolved after the overrides: a base at x8 and a caller's x2 give the six steps.
    x8 = EngineConfig(scale_factor=2.0, scale_times=3)
    assert preset_config("paper-gradual", x8).steps == ((2.0, 2.0), (4.0, 4.0), (8.0, 8.0))
    assert len(preset_config("paper-gradual", x8, scale_times=1).steps) == 6
    # An explicit list wins over the preset's.
    assert preset_config("paper-gradual", x8, gradual_scales=[[4, 4], [8, 8]]).steps == ((4.0, 4.0), (8.0, 8.0))


def test_the_self_check_waits_for_the_first_step_that_enlarges_both_axes(tiny_config, rgb_image, monkeypatch):
    # The authors' first two steps enlarge one axis by 1.5: a rebuild along one axis says little about the image,
    # so the check (and a fall back to bicubic) comes after step 3, the first x1.5 on both axes.
    seen = record(monkeypatch)
    checked = []

    def self_check(probe, net):
        checked.append(len(seen["train"]))
        assert probe.son.shape == probe.target.shape
        return SelfCheck(20.0, 30.0)  # the network behind bicubic

    monkeypatch.setattr(ReconstructionProbe, "self_check", self_check)
    config = tiny_config.replace(gradual_mode="grow", gradual_scales=AUTHORS_GRADUAL_X2, self_check_fallback=True)
    result = super_resolve(rgb_image, config)
    assert checked == [3] and result.fallback and result.self_check == {"zssr_db": 20.0, "bicubic_db": 30.0}
    assert len(result.iterations_per_step) == 3 and len(seen["enlarge"]) == 2
    assert result.image.size == (2 * rgb_image.width, 2 * rgb_image.height)


def test_the_budget_is_split_over_the_six_steps_and_the_enlarging_work_counts_the_copies_made(
        tiny_config, rgb_image, monkeypatch):
    deadlines = []
    real_train = zssr.train

    def train(*args, **kwargs):
        deadlines.append(kwargs["deadline"] - time.monotonic())
        return real_train(*args, **kwargs)

    monkeypatch.setattr(zssr, "train", train)
    config = tiny_config.replace(gradual_mode="grow", gradual_scales=AUTHORS_GRADUAL_X2, self_ensemble=True,
                                 time_budget_s=600.0)
    result = super_resolve(rgb_image, config)
    # Step 1 may spend a sixth of the budget, each later one an even share of what is left over the steps to
    # come (the tiny steps spend almost none of theirs: 600 s over 6, 5, ... 1 steps).
    assert deadlines == pytest.approx([600 / n for n in (6, 5, 4, 3, 2, 1)], abs=2.0)
    # Enlarging runs the network on four copies where the axes' scales differ, eight where they agree.
    h, w = rgb_image.height, rgb_image.width
    sizes = [(h, 3 * w // 2), (3 * h // 2, w), (3 * h // 2, 3 * w // 2), (3 * h // 2, 2 * w),
             (2 * h, 3 * w // 2), (2 * h, 2 * w)]
    copies = [4, 4, 8, 4, 4, 8]
    flops = ZSSRNet(config).flops_per_pixel
    assert result.infer_gflop == pytest.approx(flops * sum(a * b * c for (a, b), c in zip(sizes, copies)) / 1e9)
