"""Trains the blur reader (app.engine.blur_net) on external images made small with known Gaussians.

    python -m app.blur_train --data ../shared/data/train --out app/engine/weights/blur_x2.pt --iterations 6000

Every tenth image (sorted by path) is held out; the end of training reads the held-out images, made small with
Gaussians of fixed stds, and writes the errors into the recipe, which rides in the weights file and a JSON beside
it. Benchmark sets are refused.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from app.engine.blur_net import BlurNet, read_blur_with
from app.engine.degradation import blur_downscale, gaussian_kernel
from app.engine.image_io import load_image, luma, to_planes
from app.engine.resize import kernel_downscale
from app.engine.warm_start import sha256
from app.pretrain import FORBIDDEN

log = logging.getLogger("app.blur_train")

SIGMA_RANGE = (0.5, 2.5)  # training stds, uniform (HR px)
HELD_OUT_SIGMAS = (0.7, 1.0, 1.41, 1.8, 2.2)
KERNEL_SIDE = 21  # fits 4 std of the widest
MARGIN = 8  # LR px cut from each side of a training crop, so the blur's padding never shows
RESCALED_SHARE = 0.5  # default share of crops whose HR crop is first made smaller by U(0.6, 1): sharper scenes


def load_lumas(folder: Path) -> list[tuple[Path, torch.Tensor]]:
    if any(part in FORBIDDEN for part in folder.parts):
        raise SystemExit(f"refusing to train on benchmark set {folder}")
    return [(path, luma(to_planes(load_image(path).convert("RGB")).colour)) for path in sorted(folder.rglob("*.png"))]


def make_lr(hr: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """HR lumas (N, 1, H, W) blurred each with its own Gaussian (direct alignment) and kept at pixels 0, 2, 4, ...,
    stored as 8-bit: (N, 1, H / 2, W / 2)."""
    kernels = torch.stack([torch.from_numpy(gaussian_kernel(float(s), float(s), 0.0, 1, KERNEL_SIDE)) for s in sigmas])
    return (blur_downscale(hr, kernels, 2).clamp(0, 1) * 255).round() / 255


def sample_batch(images: list[torch.Tensor], rng: np.random.Generator, batch: int, lr_side: int,
                 rescaled_share: float = RESCALED_SHARE) -> tuple:
    hr_side = 2 * (lr_side + 2 * MARGIN)
    crops = []
    for _ in range(batch):
        while True:
            image = images[int(rng.integers(len(images)))]
            h, w = image.shape[-2:]
            r = rng.uniform(0.6, 1.0) if rng.random() < rescaled_share else 1.0
            side = int(math.ceil(hr_side / r))
            if side <= min(h, w):
                break
        y, x = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
        crop = image[..., y:y + side, x:x + side]
        if side != hr_side:
            crop = F.interpolate(crop, size=(hr_side, hr_side), mode="bicubic", antialias=True, align_corners=False)
        crop = torch.rot90(crop, int(rng.integers(4)), dims=(2, 3))
        crops.append(crop.flip(3) if rng.random() < 0.5 else crop)
    hr = torch.cat(crops).clamp(0, 1)
    sigmas = torch.from_numpy(rng.uniform(*SIGMA_RANGE, size=batch)).float()
    lr = make_lr(hr, sigmas)[..., MARGIN:-MARGIN, MARGIN:-MARGIN]
    return lr, sigmas


@torch.no_grad()
def held_out_errors(net: BlurNet, images: list[torch.Tensor]) -> dict:
    """Per held-out std: the mean and the mean absolute error of the std read on whole images (the engine's
    read: a centre crop of at most 256 LR px), made small as the benchmark does (a mirrored border)."""
    out = {}
    for sigma in HELD_OUT_SIGMAS:
        kernel = gaussian_kernel(sigma, sigma, 0.0, 1, KERNEL_SIDE)
        reads = [read_blur_with(net, (kernel_downscale(image, kernel, 2, "direct").clamp(0, 1) * 255).round() / 255)
                 for image in images]
        reads = np.array([r for r in reads if r is not None])
        out[str(sigma)] = {"mean": round(float(reads.mean()), 3),
                           "mean_abs_error": round(float(np.abs(reads - sigma).mean()), 3),
                           "within_0.1": round(float((np.abs(reads - sigma) <= 0.1).mean()), 3)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.blur_train", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of training PNGs (searched recursively)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--iterations", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--crop", type=int, default=64, help="LR side of a training crop")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr_end", type=float, default=1e-5)
    parser.add_argument("--rescaled_share", type=float, default=RESCALED_SHARE,
                        help="share of crops made smaller (sharper) by U(0.6, 1) before the blur")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    lumas = load_lumas(args.data)
    train = [image for i, (_, image) in enumerate(lumas) if i % 10]
    held_out = [image for i, (_, image) in enumerate(lumas) if not i % 10]
    log.info("%d training images, %d held out, from %s", len(train), len(held_out), args.data)
    net = BlurNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    started, running = time.monotonic(), None
    net.train()
    for iteration in range(args.iterations):
        lr_now = args.lr_end + 0.5 * (args.lr - args.lr_end) * (1 + math.cos(math.pi * iteration / args.iterations))
        for group in optimizer.param_groups:
            group["lr"] = lr_now
        lr, sigmas = sample_batch(train, rng, args.batch, args.crop, args.rescaled_share)
        loss = F.l1_loss(net(lr), sigmas.log())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        running = value if running is None else 0.99 * running + 0.01 * value
        if (iteration + 1) % 100 == 0:
            log.info("iteration %d, %.0f s, lr %.2e, L1 of log std %.4f", iteration + 1,
                     time.monotonic() - started, lr_now, running)
    net.eval()
    recipe = {
        "data": str(args.data), "images": len(train), "held_out_images": len(held_out),
        "degradation": f"luma; Gaussian std U{SIGMA_RANGE} HR px, {KERNEL_SIDE} px kernel, direct alignment, "
                       f"x2, 8-bit; {args.rescaled_share:.0%} of HR crops first made smaller by U(0.6, 1)",
        "crop": args.crop, "batch": args.batch, "iterations": args.iterations, "lr": args.lr, "lr_end": args.lr_end,
        "schedule": "cosine over iterations", "loss": "L1 on log std", "optimizer": "Adam", "seed": args.seed,
        "scale_factor": 2.0, "final_loss": running, "seconds": round(time.monotonic() - started, 1),
        "torch": str(torch.__version__), "held_out": held_out_errors(net, held_out),
    }
    log.info("held out: %s", recipe["held_out"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    torch.save({"arch": {"net": "BlurNet"}, "state_dict": {k: v.detach().contiguous() for k, v in
                                                            net.state_dict().items()}, "recipe": recipe}, tmp)
    tmp.replace(args.out)
    recipe["sha256"] = sha256(args.out)
    args.out.with_suffix(".json").write_text(json.dumps(recipe, indent=2) + "\n")
    log.info("saved %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
