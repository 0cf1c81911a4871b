"""What changes between gradual steps on a photo: a later step's input is the network's own clean output, so its
sons are not JPEG-compressed and, with `later_warm_start`, it starts again from weights made for clean input."""

from __future__ import annotations

import io

import torch

import app.engine.zssr as zssr
from app.engine import super_resolve
from app.engine.jpeg import JpegProfile
from app.engine.network import ZSSRNet
from app.engine.warm_start import load_weights, save_weights


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
