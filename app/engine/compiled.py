"""torch.compile for the network, with a clean fallback to eager mode where no compiler works."""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def compile_or_eager(model: torch.nn.Module, config, device: torch.device) -> torch.nn.Module:
    """The compiled model if compiling and a trial forward and backward pass succeed, else `model` itself."""
    try:
        compiled = torch.compile(model, dynamic=True)
        trial = torch.rand(1, config.in_channels, 16, 16, device=device, requires_grad=False)
        compiled(trial).sum().backward()
        model.zero_grad(set_to_none=True)
        return compiled
    except Exception as exc:  # any compiler failure (no C++ toolchain, unsupported backend) means eager
        log.warning("torch.compile unavailable (%s: %s); running eagerly", type(exc).__name__, exc)
        return model
