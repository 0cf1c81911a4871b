"""Test-time training: fit the network to LR-son/HR-father pairs drawn from one image, under the LR policy."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from app.engine.config import EngineConfig
from app.engine.degradation import Compress
from app.engine.lr_policy import LearningRatePolicy
from app.engine.pairs import Downscale, FatherPool, lr_son
from app.engine.resize import Scale, scale_pair
from app.errors import Cancelled

# (iteration, loss, lr); off the CPU the loss is the latest one read: at the first iteration, then every
# `eval_every` iterations.
OnIteration = Callable[[int, float, float], None]


@dataclass
class TrainResult:
    iterations: int
    loss: float
    lr: float
    budget_exhausted: bool
    seconds: float = 0.0
    pixels: int = 0  # HR pixels seen by the network (for throughput figures)
    decays: list[int] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)


@dataclass
class ReconstructionProbe:
    """The input's own son and the input: the network's error on it drives the learning-rate policy."""

    son: torch.Tensor
    target: torch.Tensor

    @classmethod
    def from_image(cls, image: torch.Tensor, scale_factor: Scale, downscale: Downscale,
                   max_side: int = 256, compress: Compress | None = None) -> "ReconstructionProbe":
        """`image` (1, C, H, W); a centre crop of at most `max_side` keeps the probe cheap on big photos."""
        h, w = image.shape[-2:]
        ch, cw = min(h, max_side), min(w, max_side)
        y, x = (h - ch) // 2, (w - cw) // 2
        target = image[..., y:y + ch, x:x + cw]
        return cls(lr_son(target, scale_factor, downscale, noise_std=0.0, compress=compress), target)

    @torch.no_grad()
    def error(self, net: torch.nn.Module) -> float:
        return float(F.mse_loss(net(self.son).clamp(0, 1), self.target))

    @torch.no_grad()
    def self_check(self, net: torch.nn.Module) -> "SelfCheck":
        """How close the network, and bicubic alone, rebuild the image from its own son (PSNR, all channels)."""
        return SelfCheck(tensor_psnr(net(self.son).clamp(0, 1), self.target),
                         tensor_psnr(self.son.clamp(0, 1), self.target))


@dataclass(frozen=True)
class SelfCheck:
    """The photo's own test of what was learned: PSNR of the network's and of bicubic's rebuild of the photo
    from its smaller copy (made as the training sons are). Where the network is not ahead, what it learned does
    not help this photo."""

    zssr_db: float
    bicubic_db: float

    @property
    def gain_db(self) -> float:
        return self.zssr_db - self.bicubic_db

    def describe(self) -> dict:
        return {"zssr_db": round(self.zssr_db, 2), "bicubic_db": round(self.bicubic_db, 2)}


@torch.no_grad()
def interpolate_weights(net: torch.nn.Module, start: dict[str, torch.Tensor], share: float) -> None:
    """Leave `net` at `start` (a state dict of the same network) plus `share` of the way from there to its own
    weights: 1 keeps them, towards 0 they return to `start`."""
    for name, value in net.state_dict().items():
        if value.is_floating_point():
            value.copy_(torch.lerp(start[name].to(value.device), value, share))


def tensor_psnr(x: torch.Tensor, target: torch.Tensor) -> float:
    mse = float(F.mse_loss(x.double(), target.double()))
    return 99.0 if mse <= 1e-10 else 10 * float(np.log10(1.0 / mse))


def train(net: torch.nn.Module, pool: FatherPool, probe: ReconstructionProbe, config: EngineConfig, *,
          scale_factor: Scale, downscale: Downscale, rng: np.random.Generator,
          generator: torch.Generator | None = None, deadline: float | None = None,
          max_iterations: int | None = None, on_iteration: OnIteration | None = None, should_stop: Callable[[], bool] | None = None,
          memory_format: torch.memory_format = torch.contiguous_format, noise_std: float | None = None,
          compress: Compress | None = None, augment: Sequence[int] | bool = True,
          optimizer: torch.optim.Optimizer | None = None) -> TrainResult:
    """Train `net` in place with L1 loss and Adam until the LR policy, `num_epochs`, `max_iterations` or
    `deadline` ends it (a budget that ends it is reported as exhausted).

    `deadline` is a `time.monotonic()` value; `should_stop()` returning True raises Cancelled. The sons get
    `noise_std` (default: the config's) and then `compress` (the photo's JPEG encoding), when given; `augment`
    draws each crop under a random one of the rotations and flips it allows (see FatherPool.sample). An
    `optimizer` given (over `net`'s parameters) goes on with its state, at the policy's learning rate; by default
    a fresh Adam starts.
    """
    noise_std = config.noise_std if noise_std is None else noise_std
    policy = LearningRatePolicy(config)
    optimizer = optimizer if optimizer is not None else torch.optim.Adam(net.parameters())
    _set_lr(optimizer, policy.lr)
    # Crops a whole number of LR pixels wide where the scale is one integer (a kernel's sons are sampled so).
    sy, sx = scale_pair(scale_factor)
    multiple = int(sy) if sy == sx and sy.is_integer() else 1
    loss_value, done, exhausted, pixels = float("nan"), 0, False, 0
    loss = None
    started = time.monotonic()
    # Reading the loss waits for the device; on a GPU it is read only when the probe waits for it anyway.
    read_every = 1 if probe.son.device.type == "cpu" else config.eval_every
    last = config.num_epochs if max_iterations is None else min(config.num_epochs, max_iterations)
    net.train()
    for iteration in range(1, last + 1):
        if should_stop is not None and should_stop():
            raise Cancelled("cancelled during training")
        # Checked before each step, the first included: a budget already spent trains nothing (the warm start
        # alone), which is how a job with training off is asked for.
        if deadline is not None and time.monotonic() >= deadline:
            exhausted = True
            break
        hr_father = pool.sample(rng, config.crop_size, config.batch_size, multiple, augment)
        son = lr_son(hr_father, scale_factor, downscale, noise_std, generator, compress)
        pixels += hr_father.shape[0] * hr_father.shape[-2] * hr_father.shape[-1]
        loss = _adam_step(net, optimizer, son.contiguous(memory_format=memory_format), hr_father)
        done = iteration
        if iteration % read_every == 0 or iteration == 1:
            loss_value = float(loss.detach())
        if iteration % config.eval_every == 0:
            net.eval()
            policy.record(iteration, probe.error(net))
            net.train()
        lr = _set_lr(optimizer, policy.step(iteration))
        if on_iteration is not None:
            on_iteration(iteration, loss_value, lr)
        if policy.finished:
            break
    if done == last < config.num_epochs and not policy.finished:
        exhausted = True  # the iteration budget ended it
    if loss is not None and done % read_every:
        loss_value = float(loss.detach())
    net.eval()
    return TrainResult(done, loss_value, policy.lr, exhausted, time.monotonic() - started, pixels,
                       policy.decays, policy.errors)


def _adam_step(net: torch.nn.Module, optimizer: torch.optim.Optimizer, lr_son: torch.Tensor,
               hr_father: torch.Tensor) -> torch.Tensor:
    """One step of L1 loss between the network's enlargement of the son and its father; returns the loss."""
    loss = F.l1_loss(net(lr_son), hr_father)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> float:
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr
