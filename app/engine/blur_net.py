"""A small CNN that reads, from an LR image alone, the std of the Gaussian blur it was made small with.

What an LR image shows of blur is the kernel and the scene's own softness together: a sharp scene under a wide
kernel and a soft scene under a narrow one can make the same image (docs/measurements.md, "kernel unknown"). Patch
recurrence (app.engine.degradation.estimate_kernel) has no way to tell them apart. This network learns, from
external images (T91, General100, BSD200; never a benchmark set) made small with known Gaussians, how sharp
natural scenes are, and which local cues (edge profiles, texture) carry the kernel rather than the scene.

Readout: every location predicts a log std and a weight; the image's estimate is their softmax-weighted mean, so
flat regions, which say nothing of blur, can learn to count for little, and any image size reads the same way.
Trained by `python -m app.blur_train` (the recipe rides in the weights file).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from app.engine.image_io import centre_crop, luma

BLUR_WEIGHTS = Path(__file__).parent / "weights" / "blur_x2.pt"
# (in, out, stride) of each 3x3 convolution; no padding, so no border effect enters the estimate.
LAYERS = ((1, 32, 1), (32, 32, 1), (32, 48, 2), (48, 48, 1), (48, 48, 2), (48, 48, 1))
# The estimate reads a centre crop of at most this side (LR px) of the image's luma.
READ_SIDE = 256
MIN_SIDE = 32  # below this the network's receptive field does not fit: no estimate


class BlurNet(nn.Module):
    """(N, 1, H, W) luma in [0, 1] -> (N,) log of the Gaussian std (HR px) that made it small."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(nn.Conv2d(c_in, c_out, 3, stride) for c_in, c_out, stride in LAYERS)
        self.head = nn.Conv2d(LAYERS[-1][1], 2, 1)  # per location: log std, weight logit

    def forward(self, lr_luma: torch.Tensor) -> torch.Tensor:
        y = lr_luma - lr_luma.mean(dim=(2, 3), keepdim=True)
        for conv in self.layers:
            y = torch.relu(conv(y))
        value, logit = self.head(y).flatten(2).unbind(1)
        return (value * torch.softmax(logit, dim=1)).sum(dim=1)


def load_blur_net(path: str | Path = BLUR_WEIGHTS) -> tuple[BlurNet, dict]:
    """The trained network (CPU, eval mode) and its recipe."""
    from app.engine.warm_start import read_checkpoint

    checkpoint = read_checkpoint(path, "kernel_estimator")
    net = BlurNet()
    net.load_state_dict(checkpoint["state_dict"])
    return net.eval(), checkpoint.get("recipe") or {}


_cached: dict[str, BlurNet] = {}


def read_blur(image: torch.Tensor, path: str | Path = BLUR_WEIGHTS) -> float | None:
    """The Gaussian std (in HR px, i.e. the son kernel's std in the image's own px) that made the (1, C, H, W)
    image in [0, 1] small by x2, read by the trained network at `path`; None when the image is too small."""
    key = str(path)
    if key not in _cached:
        _cached[key] = load_blur_net(path)[0]
    return read_blur_with(_cached[key], image)


@torch.no_grad()
def read_blur_with(net: BlurNet, image: torch.Tensor) -> float | None:
    """`net`'s reading of the centre crop (at most READ_SIDE) of the (1, C, H, W) image; None below MIN_SIDE."""
    if min(image.shape[-2:]) < MIN_SIDE:
        return None
    return float(math.exp(float(net(luma(centre_crop(image, READ_SIDE).float().cpu())))))
