"""The ZSSR network: a plain stack of convolutions and ReLUs that predicts the residual over its input."""

from __future__ import annotations

import math

import torch
from torch import nn

from app.engine.config import EngineConfig


class ZSSRNet(nn.Module):
    """`model_depth` conv layers of `model_width` channels; output = input + residual.

    Input: (N, in_channels, H, W), the LR son (or test image) bicubically enlarged to the target size, in [0, 1].
    """

    def __init__(self, config: EngineConfig):
        super().__init__()
        k, width = config.model_kernel_size, config.model_width
        self.config_in_channels, self.config_model_width = config.in_channels, width
        self.config_model_depth, self.config_model_kernel_size = config.model_depth, k
        channels = [config.in_channels] + [width] * (config.model_depth - 1) + [config.in_channels]
        self.layers = nn.ModuleList(
            nn.Conv2d(c_in, c_out, k, padding=k // 2) for c_in, c_out in zip(channels[:-1], channels[1:]))
        self.receptive_radius = config.model_depth * (k // 2)
        self.flops_per_pixel = 2 * sum(c_in * c_out * k * k for c_in, c_out in zip(channels[:-1], channels[1:]))
        if config.init_variance is not None:
            # The authors' initialisation: every layer, the last included, drawn from N(0, variance / fan-in).
            # (Their layers have no biases; these start at zero.)
            for conv in self.layers:
                nn.init.normal_(conv.weight, 0.0, math.sqrt(config.init_variance / (conv.in_channels * k * k)))
                nn.init.zeros_(conv.bias)
            return
        for conv in self.layers[:-1]:
            # He initialisation keeps the activations' scale through the ReLU stack.
            nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / (conv.in_channels * k * k)))
            nn.init.zeros_(conv.bias)
        # A zero last layer makes the untrained network exactly the bicubic enlargement: a short time budget
        # then degrades towards bicubic, never towards the pattern of a random residual.
        nn.init.zeros_(self.layers[-1].weight)
        nn.init.zeros_(self.layers[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for conv in self.layers[:-1]:
            y = torch.relu(conv(y))
        return x + self.layers[-1](y)
