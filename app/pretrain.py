"""Pre-trains the warm-start network on external images (T91, General100, BSD200), never on benchmark sets.

    python -m app.pretrain --data ../shared/data/train --out app/engine/weights/zssr_x2.pt --minutes 30
    python -m app.pretrain --data ../shared/data/train --out zssr_x2_photo.pt --photo --device cuda \
        --init app/engine/weights/zssr_x2.pt --batch 32 --crop 96 --lr 5e-4 --minutes 7   # photo sons

The recipe (data, crop, batch, schedule, seconds, iterations, final loss) is stored inside the weights file and
echoed to a JSON file beside it. Test-time training on an input image then starts from these weights.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from app.engine.config import EngineConfig
from app.engine.degradation import blur_downscale, gaussian_kernel
from app.engine.device import describe, select_device
from app.engine.image_io import load_image, to_planes
from app.engine.jpeg import JpegProfile
from app.engine.network import ZSSRNet
from app.engine.pairs import FatherPool, lr_son, make_downscale, min_father_side, upscale
from app.engine.warm_start import load_weights, save_weights, sha256

log = logging.getLogger("app.pretrain")

FORBIDDEN = {"Set5", "Set14", "BSD100", "B100", "Urban100", "SunHays80"}


def load_sources(folders: list[Path]) -> list[torch.Tensor]:
    images = []
    for folder in folders:
        if folder.name in FORBIDDEN or any(p in FORBIDDEN for p in folder.parts):
            raise SystemExit(f"refusing to train on benchmark set {folder}")
        for path in sorted(folder.rglob("*.png")):
            planes = to_planes(load_image(path).convert("RGB"))
            images.append(planes.colour)
    return images


class PhotoDegradation:
    """LR sons as real photos arrive: a random blur (or MATLAB bicubic), sensor noise, then JPEG at a random quality.

    The ranges cover what a photo's own x2 sons see at test time (app.engine.degradation): Gaussian blurs of std
    0.3 to 1.6 HR px (isotropic or not), noise up to 0.02, JPEG quality 30 to 95 with 4:2:0 or 4:4:4 chroma.
    """

    RECIPE = ("per crop: 25% MATLAB bicubic, else Gaussian blur std U(0.3, 1.6) px per axis (50% isotropic), "
              "random angle, then sampling x2; noise std U(0, 0.02) on 50%; JPEG quality U(30, 95) on 75% "
              "(4:2:0 on 70% of those, else 4:4:4), through Pillow; bicubic enlargement back")

    def __init__(self, factor: int, rng: np.random.Generator, generator: torch.Generator, threads: int):
        self.factor, self.rng, self.generator = factor, rng, generator
        self.pool = ThreadPoolExecutor(max_workers=threads)  # Pillow's codecs release the GIL
        self.profiles: dict[tuple[int, int], JpegProfile] = {}

    def _kernel(self) -> np.ndarray:
        sy = self.rng.uniform(0.3, 1.6)
        sx = sy if self.rng.random() < 0.5 else self.rng.uniform(0.3, 1.6)
        return gaussian_kernel(sy, sx, self.rng.uniform(0, math.pi), self.factor, size=13)

    def _jpeg(self, lr: torch.Tensor) -> torch.Tensor:
        pixels = (lr.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        jobs = []
        for image in pixels:
            if self.rng.random() < 0.75:
                key = (int(self.rng.integers(30, 96)), 2 if self.rng.random() < 0.7 else 0)
                profile = self.profiles.setdefault(key, JpegProfile.standard(*key))
                jobs.append(self.pool.submit(profile.roundtrip, np.ascontiguousarray(image)))
            else:
                jobs.append(None)
        out = np.stack([image if job is None else job.result() for image, job in zip(pixels, jobs)])
        return torch.from_numpy(out).permute(0, 3, 1, 2).to(lr.device, lr.dtype) / 255

    def __call__(self, hr: torch.Tensor) -> torch.Tensor:
        n = hr.shape[0]
        bicubic = torch.from_numpy(self.rng.random(n) < 0.25)
        kernels = torch.from_numpy(np.stack([self._kernel() for _ in range(n)]))
        lr = blur_downscale(hr, kernels, self.factor)
        if bicubic.any():
            lr[bicubic.to(hr.device)] = make_downscale(float(self.factor), None)(hr[bicubic.to(hr.device)])
        noise_std = torch.from_numpy(np.where(self.rng.random(n) < 0.5, self.rng.uniform(0, 0.02, n), 0.0))
        noise = torch.randn(lr.shape, generator=self.generator, dtype=lr.dtype).to(lr.device)
        lr = lr + noise_std.to(lr)[:, None, None, None] * noise
        return upscale(self._jpeg(lr), float(self.factor), tuple(hr.shape[-2:]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.pretrain", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", required=True, help="folders of training PNGs")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-clock training time")
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr_end", type=float, default=1e-5)
    parser.add_argument("--scale_factor", type=float, default=2.0)
    parser.add_argument("--noise_std", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", type=Path, help="continue from these weights (a file this script wrote)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--photo", action="store_true",
                        help="sons degraded as real photos (blur, noise, JPEG) instead of clean bicubic")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--checkpoint_every", type=float, default=120.0, help="seconds between saves")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)

    config = EngineConfig(seed=args.seed)
    torch.manual_seed(args.seed)
    net = ZSSRNet(config)
    previous = None
    if args.init:
        previous = load_weights(net, args.init)["recipe"]
    device = select_device(args.device)
    net = net.to(device=device, memory_format=torch.channels_last)
    folders = [p for d in args.data for p in ([d] if any(d.glob("*.png")) else sorted(x for x in d.iterdir()
                                                                                          if x.is_dir()))]
    sources = [s.to(device) for s in load_sources(folders)]
    # Fathers no smaller than the crop keep every batch at the full crop size.
    pool = FatherPool.build(sources, args.scale_factor, max(args.crop, min_father_side(args.scale_factor)))
    log.info("%d images from %s, %d fathers with downscaled copies, on %s", len(sources),
             ", ".join(f.name for f in folders), len(pool.fathers), describe(device))
    downscale = make_downscale(args.scale_factor, None)
    rng = np.random.default_rng(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    photo = PhotoDegradation(int(args.scale_factor), rng, generator, os.cpu_count() or 1) if args.photo else None
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    budget = args.minutes * 60
    started = last_save = time.monotonic()
    iteration, running = 0, None

    def save(final: bool) -> None:
        recipe = {
            "data": [f.name for f in folders], "images": len(sources), "crop": args.crop, "batch": args.batch,
            "lr": args.lr, "lr_end": args.lr_end, "schedule": "cosine over wall-clock time",
            "scale_factor": args.scale_factor, "noise_std": args.noise_std, "seed": args.seed,
            "degradation": PhotoDegradation.RECIPE if photo else
            "MATLAB bicubic downscale, bicubic upscale (as the engine's LR sons)", "device": describe(device),
            "augmentation": "father scales 1.0-0.5 sampled by area, 8 dihedral transforms, random crops",
            "loss": "L1", "optimizer": "Adam", "iterations": iteration,
            "seconds": round(time.monotonic() - started, 1), "final_loss": running, "torch": str(torch.__version__),
            "complete": final,
        }
        if previous is not None:
            recipe["continued_from"] = previous
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        save_weights(net, config, tmp, recipe)
        tmp.replace(args.out)
        recipe["sha256"] = sha256(args.out)
        args.out.with_suffix(".json").write_text(json.dumps(recipe, indent=2) + "\n")

    net.train()
    while (elapsed := time.monotonic() - started) < budget:
        progress = elapsed / budget
        lr = args.lr_end + 0.5 * (args.lr - args.lr_end) * (1 + math.cos(math.pi * progress))
        for group in optimizer.param_groups:
            group["lr"] = lr
        hr = pool.sample(rng, args.crop, args.batch, int(args.scale_factor))
        if photo is not None:
            son = photo(hr)
        else:
            son = lr_son(hr, args.scale_factor, downscale, args.noise_std, generator)
        loss = F.l1_loss(net(son.contiguous(memory_format=torch.channels_last)), hr)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        iteration += 1
        value = float(loss.detach())
        running = value if running is None else 0.99 * running + 0.01 * value
        if iteration % 100 == 0:
            log.info("iteration %d, %.0f s, lr %.2e, loss %.5f", iteration, elapsed, lr, running)
        if time.monotonic() - last_save > args.checkpoint_every:
            save(final=False)
            last_save = time.monotonic()
    save(final=True)
    log.info("saved %s after %d iterations", args.out, iteration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
