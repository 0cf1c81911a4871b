"""Test-time training: it lowers the reconstruction error, obeys the time budget and can be cancelled."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from app.engine.network import ZSSRNet
from app.engine.pairs import FatherPool, make_downscale, min_father_side
from app.engine.train import ReconstructionProbe, train
from app.errors import Cancelled


@pytest.fixture
def image(make_image) -> torch.Tensor:
    array = np.asarray(make_image(40, 40), dtype=np.float32) / 255.0
    return torch.from_numpy(array.transpose(2, 0, 1).copy())[None]


def setup(config, image):
    torch.manual_seed(config.seed)
    net = ZSSRNet(config)
    downscale = make_downscale(config.scale_factor, None)
    pool = FatherPool.build([image], config.scale_factor, min_father_side(config.scale_factor))
    probe = ReconstructionProbe.from_image(image, config.scale_factor, downscale)
    kwargs = dict(scale_factor=config.scale_factor, downscale=downscale, rng=np.random.default_rng(config.seed))
    return net, pool, probe, kwargs


@pytest.fixture
def blocky_image() -> torch.Tensor:
    """Random black and white 4x4 blocks: sharp edges that bicubic blurs and a tiny network learns to restore."""
    blocks = (np.random.default_rng(5).random((10, 10, 3)) > 0.5).astype(np.float32)
    array = np.kron(blocks, np.ones((4, 4, 1), dtype=np.float32))
    return torch.from_numpy(array.transpose(2, 0, 1).copy())[None]


@pytest.mark.parametrize("seed", [0, 1])
def test_training_lowers_the_reconstruction_error(tiny_config, blocky_image, seed):
    # min_iters keeps the rate up for the whole (short) run: this is about learning, not the policy.
    config = tiny_config.replace(model_depth=3, model_width=16, num_epochs=80, eval_every=5, lr_decay_step=10,
                                 lr_decay_range=30, lr_stop=1e-7, lr=3e-3, min_iters=10**6, seed=seed)
    net, pool, probe, kwargs = setup(config, blocky_image)
    net.eval()
    before = probe.error(net)
    result = train(net, pool, probe, config, **kwargs)
    after = probe.error(net)
    assert after < 0.9 * before
    assert result.iterations == 80 and not result.budget_exhausted
    assert not net.training
    # The policy saw the probe's error every eval_every iterations.
    assert len(result.errors) == 80 // 5
    # Every 40x40 father holds a 16x16 crop, so each iteration shows the network 256 HR pixels.
    assert result.pixels == 80 * 16 * 16 and result.seconds > 0
    assert result.errors[-1] == pytest.approx(after, rel=1e-5)


def test_on_iteration_reports_every_iteration_with_the_current_rate(tiny_config, image):
    net, pool, probe, kwargs = setup(tiny_config, image)
    calls = []
    result = train(net, pool, probe, tiny_config, on_iteration=lambda *a: calls.append(a), **kwargs)
    assert [c[0] for c in calls] == list(range(1, tiny_config.num_epochs + 1))
    assert all(np.isfinite(c[1]) and c[1] >= 0 for c in calls)
    assert calls[0][2] == tiny_config.lr
    assert calls[-1][2] == result.lr and calls[-1][1] == result.loss


def test_training_changes_the_weights_in_place(tiny_config, image):
    net, pool, probe, kwargs = setup(tiny_config, image)
    before = [p.detach().clone() for p in net.parameters()]
    train(net, pool, probe, tiny_config, **kwargs)
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_a_spent_time_budget_trains_nothing_and_says_so(tiny_config, image):
    """Training off (a job budget near zero) means the starting weights alone, not a first Adam step."""
    config = tiny_config.replace(num_epochs=1000)
    net, pool, probe, kwargs = setup(config, image)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    result = train(net, pool, probe, config, deadline=time.monotonic(), **kwargs)
    assert result.iterations == 0 and result.pixels == 0
    assert result.budget_exhausted
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("epochs, exhausted", [(1, False), (3, True)])
def test_the_budget_is_checked_before_each_step(tiny_config, image, epochs, exhausted):
    """A budget that runs out during the last iteration is not exhausted; one that runs out earlier is."""
    config = tiny_config.replace(num_epochs=epochs)
    net, pool, probe, kwargs = setup(config, image)
    result = train(net, pool, probe, config, deadline=time.monotonic() + 0.05,
                   on_iteration=lambda *_: time.sleep(0.06), **kwargs)
    assert result.iterations == 1 and result.budget_exhausted is exhausted


def test_a_short_budget_stops_a_long_run(tiny_config, image):
    # min_iters keeps the policy from ending the run before the deadline does.
    config = tiny_config.replace(num_epochs=1_000_000, min_iters=1_000_000)
    net, pool, probe, kwargs = setup(config, image)
    started = time.monotonic()
    result = train(net, pool, probe, config, deadline=started + 0.3, **kwargs)
    assert result.budget_exhausted
    assert 1 <= result.iterations < 1_000_000
    assert time.monotonic() - started < 5


def test_should_stop_raises_cancelled(tiny_config, image):
    config = tiny_config.replace(num_epochs=50)
    net, pool, probe, kwargs = setup(config, image)
    polls, seen = [], []

    def should_stop() -> bool:
        polls.append(1)
        return len(polls) > 3

    with pytest.raises(Cancelled):
        train(net, pool, probe, config, should_stop=should_stop, on_iteration=lambda i, *_: seen.append(i),
              **kwargs)
    assert seen == [1, 2, 3]


def test_the_learning_rate_policy_can_end_training(tiny_config, image):
    # lr_stop just under lr: the first decay ends training, long before num_epochs.
    config = tiny_config.replace(num_epochs=500, lr_stop=0.9 * tiny_config.lr, lr_decay_step=4, eval_every=1,
                                 lr_decay_range=8)
    net, pool, probe, kwargs = setup(config, image)
    result = train(net, pool, probe, config, **kwargs)
    assert result.decays and result.iterations == result.decays[0] < 500
    assert result.lr < config.lr_stop and not result.budget_exhausted


def test_same_seed_same_training(tiny_config, image):
    losses = []
    for _ in range(2):
        net, pool, probe, kwargs = setup(tiny_config, image)
        losses.append(train(net, pool, probe, tiny_config, **kwargs).loss)
    assert losses[0] == losses[1]


def test_noise_and_batches_are_accepted(tiny_config, image):
    config = tiny_config.replace(noise_std=0.02, batch_size=3)
    net, pool, probe, kwargs = setup(config, image)
    result = train(net, pool, probe, config, generator=torch.Generator().manual_seed(0), **kwargs)
    assert result.iterations == config.num_epochs and np.isfinite(result.loss)

