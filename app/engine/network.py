"""The ZSSR network: a plain stack of convolutions and ReLUs that predicts the residual over its input."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from app.engine.config import EngineConfig


class ZSSRNet(nn.Module):
    """`model_depth` conv layers of `model_width` channels; output = input + residual.

    Input: (N, in_channels, H, W), the LR son (or test image) bicubically enlarged to the target size, in [0, 1].

    With `model_fold` f > 1 the enlarged input's f x f blocks are folded into channels (pixel unshuffle, an edge
    repeated where a side is not a multiple of f), the convolutions run on the 1/f^2 as many block pixels, and the
    last layer's f^2 channel groups unfold into the residual (sub-pixel convolution, as ESPCN's). At x2 with f = 2
    the layers work at the input photo's own resolution: a quarter of the work per output pixel, and f times the
    reach, for the same width and depth. f = 1 is the paper's network.
    """

    def __init__(self, config: EngineConfig):
        super().__init__()
        k, width, fold = config.model_kernel_size, config.model_width, config.model_fold
        self.config_in_channels, self.config_model_width = config.in_channels, width
        self.config_model_depth, self.config_model_kernel_size = config.model_depth, k
        self.config_model_fold = self.fold = fold
        planes = config.in_channels * fold * fold
        channels = [planes] + [width] * (config.model_depth - 1) + [planes]
        self.layers = nn.ModuleList(
            nn.Conv2d(c_in, c_out, k, padding=k // 2) for c_in, c_out in zip(channels[:-1], channels[1:]))
        # In output pixels: the layers' reach in blocks, and a block's own far side.
        self.receptive_radius = fold * config.model_depth * (k // 2) + fold - 1
        self.flops_per_pixel = 2 * sum(c_in * c_out * k * k
                                       for c_in, c_out in zip(channels[:-1], channels[1:])) / (fold * fold)
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
        y, f = x, self.fold
        h, w = x.shape[-2:]
        if f > 1:
            y = F.pixel_unshuffle(F.pad(y, (0, -w % f, 0, -h % f), mode="replicate"), f)
        for conv in self.layers[:-1]:
            y = torch.relu(conv(y))
        y = self.layers[-1](y)
        if f > 1:
            y = F.pixel_shuffle(y, f)[..., :h, :w]
        return x + y
