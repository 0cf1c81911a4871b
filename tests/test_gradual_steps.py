"""What changes between gradual steps on a photo: a later step's input is the network's own clean output, so its
sons are not JPEG-compressed and, with `later_warm_start`, it starts again from weights made for clean input. And
`gradual_mode: grow`, the authors' default, where every step enlarges the input itself at the total scale."""

from __future__ import annotations

import io

import pytest
import torch

import app.engine.zssr as zssr
from app.engine import super_resolve
from app.engine.jpeg import JpegProfile
from app.engine.network import ZSSRNet
from app.engine.warm_start import load_weights, save_weights
from app.errors import ConfigError


def weights_file(config, path, seed):
    torch.manual_seed(seed)
    save_weights(ZSSRNet(config), config, path, recipe={"scale_factor": 2.0})
    return str(path)


def first_parameter(net) -> torch.Tensor:
    return next(net.parameters()).detach().clone()


def record_steps(monkeypatch):
    """Per gradual step: the `compress` handed to training, and the network's first parameter when it enlarges."""
    seen = {"compress": [], "weights": []}
    real_train, real_enlarge = zssr.train, zssr.enlarge

    def train(model, *args, **kwargs):
        seen["compress"].append(kwargs["compress"])
        return real_train(model, *args, **kwargs)

    def enlarge(net, *args, **kwargs):
        seen["weights"].append(first_parameter(net))
        return real_enlarge(net, *args, **kwargs)

    monkeypatch.setattr(zssr, "train", train)
    monkeypatch.setattr(zssr, "enlarge", enlarge)
    return seen


def test_only_the_first_steps_sons_go_through_the_photos_jpeg(tiny_config, rgb_image, monkeypatch):
    buffer = io.BytesIO()
    rgb_image.save(buffer, format="JPEG", quality=70)
    seen = record_steps(monkeypatch)
    super_resolve(rgb_image, tiny_config.replace(scale_times=3, sons_jpeg=True),
                  jpeg=JpegProfile.read(buffer.getvalue()))
    first, *later = seen["compress"]
    assert first is not None and later == [None, None]


def test_later_steps_start_again_from_later_warm_start(tiny_config, rgb_image, monkeypatch, tmp_path):
    first = weights_file(tiny_config, tmp_path / "first.pt", seed=1)
    later = weights_file(tiny_config, tmp_path / "later.pt", seed=2)
    untrained = tiny_config.replace(scale_times=3, num_epochs=1, time_budget_s=1e-9, warm_start=first)
    expected = {name: first_parameter(_loaded(tiny_config, path)) for name, path in
                (("first", first), ("later", later))}
    assert not torch.equal(expected["first"], expected["later"])

    seen = record_steps(monkeypatch)
    super_resolve(rgb_image, untrained.replace(later_warm_start=later))
    assert [torch.equal(w, expected["first"]) for w in seen["weights"]] == [True, False, False]
    assert [torch.equal(w, expected["later"]) for w in seen["weights"]] == [False, True, True]

    seen = record_steps(monkeypatch)
    super_resolve(rgb_image, untrained)  # without it, every step goes on from the first step's weights
    assert all(torch.equal(w, expected["first"]) for w in seen["weights"])


def test_later_steps_train_on_from_later_warm_start(tiny_config, rgb_image, monkeypatch, tmp_path):
    later = weights_file(tiny_config, tmp_path / "later.pt", seed=2)
    loaded = first_parameter(_loaded(tiny_config, later))
    seen = record_steps(monkeypatch)
    super_resolve(rgb_image, tiny_config.replace(scale_times=2, later_warm_start=later))
    step1, step2 = seen["weights"]
    # Step 2 trained from the later weights: moved off them, and nowhere near where step 1 ended.
    assert not torch.equal(step2, loaded)
    assert (step2 - loaded).abs().max() < (step2 - step1).abs().max()


def _loaded(config, path):
    net = ZSSRNet(config)
    load_weights(net, path, 2.0)
    return net


def test_growing_steps_learn_and_enlarge_the_input_itself_at_the_total_scale(tiny_config, rgb_image, monkeypatch):
    seen = {"train": [], "enlarge": []}
    real_train, real_enlarge = zssr.train, zssr.enlarge

    def train(model, pool, probe, config, **kwargs):
        seen["train"].append((kwargs["scale_factor"], [tuple(f.shape[-2:]) for f in pool.fathers],
                              tuple(probe.target.shape[-2:]), tuple(probe.son.shape[-2:])))
        return real_train(model, pool, probe, config, **kwargs)

    def enlarge(net, lr, scale_factor, *args, **kwargs):
        seen["enlarge"].append((tuple(lr.shape[-2:]), scale_factor))
        return real_enlarge(net, lr, scale_factor, *args, **kwargs)

    monkeypatch.setattr(zssr, "train", train)
    monkeypatch.setattr(zssr, "enlarge", enlarge)
    h, w = rgb_image.height, rgb_image.width
    result = super_resolve(rgb_image, tiny_config.replace(scale_times=2, gradual_mode="grow"))
    assert result.image.size == (4 * w, 4 * h)
    # Step 2 enlarges the input by 4, not step 1's output by 2.
    assert seen["enlarge"] == [((h, w), 2.0), ((h, w), 4.0)]
    (scale1, fathers1, target1, _), (scale2, fathers2, target2, son2) = seen["train"]
    assert (scale1, scale2) == (2.0, 4.0)
    # Its fathers: the input's pyramid and step 1's output; its probe: the input's own son, 4 times smaller.
    assert (h, w) in fathers2 and (2 * h, 2 * w) in fathers2 and (2 * h, 2 * w) not in fathers1
    assert target2 == (h, w) == target1 and son2 == (h, w)  # the son is enlarged back to the input's size

    seen["enlarge"].clear()
    super_resolve(rgb_image, tiny_config.replace(scale_times=2))  # chain: the output, by 2
    assert seen["enlarge"] == [((h, w), 2.0), ((2 * h, 2 * w), 2.0)]


def test_growing_refuses_what_only_fits_one_scale(tiny_config):
    for change in ({"scale_factor": 1.5}, {"estimate_kernel": True}, {"later_warm_start": "x.pt"}):
        with pytest.raises(ConfigError, match="gradual_mode"):
            tiny_config.replace(scale_times=2, gradual_mode="grow", **change)
    tiny_config.replace(scale_times=1, gradual_mode="grow", scale_factor=1.5)  # one step: nothing grows


def adam_steps(optimizer) -> list[int]:
    return sorted({int(state["step"]) for state in optimizer.state.values()})


@pytest.mark.parametrize("carry", [False, True])
def test_carry_optimizer_keeps_adams_moments_across_steps(tiny_config, rgb_image, monkeypatch, carry):
    """The authors keep one Adam through the gradual steps: with `carry_optimizer` step 2 starts from step 1's
    moments (Adam's step count goes on), at the policy's fresh learning rate; by default each step starts anew."""
    seen = []
    real_train = zssr.train

    def train(model, *args, **kwargs):
        optimizer = kwargs["optimizer"]
        before, rates = None, []
        if optimizer is not None:
            before = adam_steps(optimizer)
            optimizer.param_groups[0]["lr"] = 123.0  # as step 1 left it, or worse: the policy must reset it
            real_step = optimizer.step
            monkeypatch.setattr(optimizer, "step", lambda: (rates.append(optimizer.param_groups[0]["lr"]),
                                                            real_step())[1])
        result = real_train(model, *args, **kwargs)
        seen.append((before, result.iterations))
        assert rates[:1] == ([] if optimizer is None else [tiny_config.lr])
        return result

    monkeypatch.setattr(zssr, "train", train)
    super_resolve(rgb_image, tiny_config.replace(scale_times=2, carry_optimizer=carry, self_check_fallback=False))
    (first_before, first_iterations), (second_before, _) = seen
    if carry:
        assert first_before == [] and second_before == [first_iterations]
    else:
        assert first_before is None and second_before is None

