"""How long an enlargement will take on this device, from a short timing of the network (before any real work)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch

from app.engine.config import AUTO, EngineConfig
from app.engine.device import describe, select_device
from app.engine.network import ZSSRNet
from app.engine.warm_start import file_arch

# The timing's input side: large enough that the convolutions, not the call overhead, dominate.
_PROBE_SIDE = 192
# What makes two networks cost the same.
_DESIGN_KEYS = ("in_channels", "model_width", "model_depth", "model_kernel_size", "model_fold")


@dataclass(frozen=True)
class Estimate:
    """Seconds an enlargement will take at most: training (num_epochs per gradual step, or time_budget_s) and
    enlarging (each step's output through the network, 8 times where it is self-ensembled)."""

    training_s: float
    enlarging_s: float
    device: str

    @property
    def total_s(self) -> float:
        return self.training_s + self.enlarging_s


def estimate(inputs: list[tuple[tuple[int, int], EngineConfig]]) -> Estimate:
    """The time to enlarge `inputs`, each an image's (width, height) and the config it runs with (its input
    profile's), on the configs' device, from timing each network design once on a small input: one training
    iteration and one forward pass.

    Back-projection, the sons' making and the self-check are left out: they are small beside the network's work."""
    if not inputs:
        return Estimate(0.0, 0.0, "-")
    device = select_device(inputs[0][1].device)
    if inputs[0][1].num_threads:
        torch.set_num_threads(inputs[0][1].num_threads)
    timings: dict[tuple, tuple[float, float]] = {}
    training_s = 0.0
    enlarging_s = 0.0
    for (width, height), config in inputs:
        design = _design(config)
        key = (*(getattr(design, k) for k in _DESIGN_KEYS), config.crop_size, config.batch_size, config.channels_last)
        if key not in timings:
            timings[key] = _time_network(design, device)
        forward_s, iteration_s = timings[key]
        training = len(config.steps) * config.num_epochs * iteration_s if config.test_time_learning else 0.0
        if config.time_budget_s is not None:
            training = min(training, config.time_budget_s)
        training_s += training
        for step, (sy, sx) in enumerate(step_scales(config), start=1):
            ensembled = config.self_ensemble and (config.ensemble_steps is None or step <= config.ensemble_steps)
            enlarging_s += width * height * sy * sx * (8 if ensembled else 1) * forward_s
    return Estimate(training_s, enlarging_s, describe(device))


def _time_network(config: EngineConfig, device: torch.device) -> tuple[float, float]:
    """Seconds of one forward pass per output pixel, and of one training iteration, of `config`'s network."""
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    net = ZSSRNet(config).to(device=device, memory_format=memory_format)
    return (_per_pixel_forward(net, config.in_channels, device, memory_format),
            _training_iteration(net, config, device, memory_format))


def _design(config: EngineConfig) -> EngineConfig:
    """The config with the network design it will run: the warm start's (for `auto`, the photo weights')."""
    path = config.photo_warm_start if config.warm_start == AUTO else config.warm_start
    if not path:
        return config
    return dataclasses.replace(config, **file_arch(path))


def step_scales(config: EngineConfig) -> list[tuple[float, float]]:
    """The scale of each step's output over the input: the steps' own in grow mode, their product in chain."""
    if config.gradual_scales is not None or config.gradual_mode == "grow":
        return list(config.steps)
    total, scales = (1.0, 1.0), []
    for sy, sx in config.steps:
        total = (total[0] * sy, total[1] * sx)
        scales.append(total)
    return scales


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def _per_pixel_forward(net: ZSSRNet, channels: int, device: torch.device, memory_format: torch.memory_format) -> float:
    x = torch.rand(1, channels, _PROBE_SIDE, _PROBE_SIDE, device=device).contiguous(memory_format=memory_format)
    net(x)  # the first call pays one-time costs
    _synchronize(device)
    started = time.perf_counter()
    net(x)
    _synchronize(device)
    return (time.perf_counter() - started) / (_PROBE_SIDE * _PROBE_SIDE)


def _training_iteration(net: ZSSRNet, config: EngineConfig, device: torch.device,
                        memory_format: torch.memory_format) -> float:
    x = torch.rand(config.batch_size, config.in_channels, config.crop_size, config.crop_size, device=device)
    x = x.contiguous(memory_format=memory_format)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.0)

    def iteration() -> None:
        optimizer.zero_grad(set_to_none=True)
        net(x).abs().mean().backward()
        optimizer.step()

    iteration()
    _synchronize(device)
    started = time.perf_counter()
    iteration()
    _synchronize(device)
    return time.perf_counter() - started
