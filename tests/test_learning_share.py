"""learning_share: each step's weights end part of the way from its warm start to what its training reached."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import app.engine.zssr as zssr
from app.engine.config import EngineConfig
from app.engine.network import ZSSRNet
from app.engine.train import interpolate_weights
from app.engine.zssr import super_resolve


def two_states(config, seeds=(1, 2)):
    states = []
    for seed in seeds:
        torch.manual_seed(seed)
        net = ZSSRNet(config)
        for p in net.parameters():
            torch.nn.init.normal_(p, 0.0, 1.0)
        states.append({k: v.detach().clone() for k, v in net.state_dict().items()})
    return states


@settings(max_examples=25, deadline=None)
@given(share=st.floats(0.0, 1.0))
def test_interpolation_lands_the_share_of_the_way_from_the_start(share):
    config = EngineConfig(model_depth=3, model_width=4)
    start, end = two_states(config)
    net = ZSSRNet(config)
    net.load_state_dict(end)
    interpolate_weights(net, start, share)
    for name, value in net.state_dict().items():
        torch.testing.assert_close(value, start[name] + share * (end[name] - start[name]))


def test_interpolation_ends_of_the_range(tiny_config):
    start, end = two_states(tiny_config)
    net = ZSSRNet(tiny_config)
    for share, expected in ((1.0, end), (0.0, start)):
        net.load_state_dict(end)
        interpolate_weights(net, start, share)
        for name, value in net.state_dict().items():
            torch.testing.assert_close(value, expected[name], rtol=0, atol=0)


def weights_at_enlarging(monkeypatch, image, config):
    """Run the pipeline; return the network's weights each time a step enlarges."""
    seen = []
    original = zssr.enlarge

    def spy(model, *args, **kwargs):
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return original(model, *args, **kwargs)

    monkeypatch.setattr(zssr, "enlarge", spy)
    result = super_resolve(image, config)
    monkeypatch.setattr(zssr, "enlarge", original)
    return result, seen


@pytest.mark.parametrize("share", [0.25, 0.5])
def test_each_step_enlarges_with_the_weights_the_share_of_the_way_from_its_start(tiny_config, make_image,
                                                                                 monkeypatch, share):
    """Training is deterministic: the shared run's weights are the start plus `share` of the full run's move."""
    image = make_image(40, 36)
    config = tiny_config.replace(scale_times=2, later_warm_start=None)
    untrained, starts = weights_at_enlarging(monkeypatch, image, config.replace(time_budget_s=1e-9))
    full, adapted = weights_at_enlarging(monkeypatch, image, config)
    shared, blended = weights_at_enlarging(monkeypatch, image, config.replace(learning_share=share))
    assert untrained.iterations_per_step == (0, 0)
    assert full.iterations_per_step == shared.iterations_per_step == (6, 6)
    # Step 1 starts from the warm start; step 2 from what step 1 left (here: the blend).
    first = {k: starts[0][k] + share * (adapted[0][k] - starts[0][k]) for k in starts[0]}
    for name in first:
        torch.testing.assert_close(blended[0][name], first[name])
        assert not torch.equal(blended[0][name], adapted[0][name]) or torch.equal(starts[0][name], adapted[0][name])
    assert any(not torch.equal(blended[1][k], blended[0][k]) for k in first)
    assert not np.array_equal(np.asarray(full.image), np.asarray(shared.image))


def test_a_share_of_one_is_the_full_learning_bit_for_bit(tiny_config, make_image, monkeypatch):
    image = make_image(40, 36)
    full, adapted = weights_at_enlarging(monkeypatch, image, tiny_config)
    same, kept = weights_at_enlarging(monkeypatch, image, tiny_config.replace(learning_share=1.0))
    assert np.array_equal(np.asarray(full.image), np.asarray(same.image))
    for name in adapted[0]:
        assert torch.equal(adapted[0][name], kept[0][name])
