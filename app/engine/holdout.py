"""Learning that never hurts: a strip of the photo held out of training, and the judgement, on it, of each gradual
step's test-time learning against the weights the step started from."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from app.engine.degradation import Compress
from app.engine.image_io import luma
from app.engine.pairs import Downscale, lr_son
from app.engine.resize import Scale
from app.engine.train import tensor_psnr

# The strip is this share of the photo's side, at least MIN_STRIP pixels (narrower photos hold nothing out) and
# at most MAX_STRIP_LENGTH long (its most detailed stretch): a few thousand pixels judge a step in a few
# milliseconds' worth of forward passes, and training loses an eighth of the photo at most.
STRIP_SHARE = 0.125
MIN_STRIP = 24
MAX_STRIP_LENGTH = 256
MIN_TRAIN_SIDE = 32  # what training keeps must still make fathers


@dataclass(frozen=True)
class HeldOut:
    """The photo without its held-out strip (to train on) and the strip (to judge on), both (1, C, h, w)."""

    train: torch.Tensor
    strip: torch.Tensor
    edge: str  # top, bottom, left or right

    @classmethod
    def split(cls, image: torch.Tensor) -> "HeldOut | None":
        """The edge strip of `image` with the most detail (luma spread) held out; None when the photo is too
        small to spare one."""
        h, w = image.shape[-2:]
        candidates = []
        for edge, side, other in (("top", h, w), ("bottom", h, w), ("left", w, h), ("right", w, h)):
            thickness = max(MIN_STRIP, round(side * STRIP_SHARE))
            if side - thickness < MIN_TRAIN_SIDE or other < MIN_STRIP:
                continue
            strip, train = _cut(image, edge, thickness)
            candidates.append((float(luma(strip).std()), edge, strip, train))
        if not candidates:
            return None
        _, edge, strip, train = max(candidates, key=lambda c: c[0])
        return cls(train, _most_detailed_stretch(strip), edge)

    @torch.no_grad()
    def psnr(self, net: torch.nn.Module, scale_factor: Scale, downscale: Downscale,
             compress: Compress | None = None) -> float:
        """How well `net` rebuilds the strip from its son, made as the step's training sons are (without noise)."""
        son = lr_son(self.strip, scale_factor, downscale, noise_std=0.0, compress=compress)
        return tensor_psnr(net(son).clamp(0, 1), self.strip)


def _cut(image: torch.Tensor, edge: str, thickness: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(strip, rest) of `image` with a strip `thickness` thick along `edge`."""
    if edge == "top":
        return image[..., :thickness, :], image[..., thickness:, :]
    if edge == "bottom":
        return image[..., -thickness:, :], image[..., :-thickness, :]
    if edge == "left":
        return image[..., :thickness], image[..., thickness:]
    return image[..., -thickness:], image[..., :-thickness]


def _most_detailed_stretch(strip: torch.Tensor) -> torch.Tensor:
    """At most MAX_STRIP_LENGTH of the strip along its length: the window with the most luma spread."""
    h, w = strip.shape[-2:]
    along_width = w >= h
    length = w if along_width else h
    if length <= MAX_STRIP_LENGTH:
        return strip
    step = MAX_STRIP_LENGTH // 4
    starts = list(range(0, length - MAX_STRIP_LENGTH + 1, step))
    if starts[-1] != length - MAX_STRIP_LENGTH:
        starts.append(length - MAX_STRIP_LENGTH)

    def window(start: int) -> torch.Tensor:
        end = start + MAX_STRIP_LENGTH
        return strip[..., start:end] if along_width else strip[..., start:end, :]

    return max((window(s) for s in starts), key=lambda x: float(luma(x).std()))


@dataclass(frozen=True)
class Judgement:
    """One gradual step's learning, judged on the held-out strip: kept only where it rebuilds the strip better."""

    step: int
    adapted_db: float
    warm_start_db: float

    @property
    def gain_db(self) -> float:
        return self.adapted_db - self.warm_start_db

    @property
    def kept(self) -> bool:
        return self.gain_db > 0

    def describe(self) -> dict:
        return {"step": self.step, "adapted_db": round(self.adapted_db, 3),
                "warm_start_db": round(self.warm_start_db, 3), "gain_db": round(self.gain_db, 3),
                "kept": self.kept}


def judge(net: torch.nn.Module, model: torch.nn.Module, before: dict[str, torch.Tensor], held_out: HeldOut,
          step: int, scale_factor: Scale, downscale: Downscale, compress: Compress | None) -> Judgement:
    """Score the step's trained weights (in `net`) and the weights it started from (`before`, a state dict) on
    the strip through `model` (which runs `net`), and leave `net` holding the better: the trained ones only
    where they are strictly ahead."""
    adapted_db = held_out.psnr(model, scale_factor, downscale, compress)
    adapted = {k: v.detach().clone() for k, v in net.state_dict().items()}
    net.load_state_dict(before)
    warm_start_db = held_out.psnr(model, scale_factor, downscale, compress)
    judgement = Judgement(step, adapted_db, warm_start_db)
    if judgement.kept:
        net.load_state_dict(adapted)
    return judgement
