"""Pre-trains the warm-start network on external images (T91, General100, BSD200), never on benchmark sets.

    python -m app.pretrain --data ../shared/data/train --out app/engine/weights/zssr_x2.pt --minutes 30

The recipe (data, crop, batch, schedule, seconds, iterations, final loss) is stored inside the weights file and
echoed to a JSON file beside it. Test-time training on an input image then starts from these weights.
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

from app.engine.config import EngineConfig
from app.engine.image_io import load_image, to_planes
from app.engine.network import ZSSRNet
from app.engine.pairs import FatherPool, lr_son, make_downscale, min_father_side
from app.engine.warm_start import load_weights, save_weights, sha256

log = logging.getLogger("app.pretrain")

FORBIDDEN = {"Set5", "Set14", "BSD100", "B100", "Urban100"}


def load_sources(folders: list[Path]) -> list[torch.Tensor]:
    images = []
    for folder in folders:
        if folder.name in FORBIDDEN or any(p in FORBIDDEN for p in folder.parts):
            raise SystemExit(f"refusing to train on benchmark set {folder}")
        for path in sorted(folder.rglob("*.png")):
            planes = to_planes(load_image(path).convert("RGB"))
            images.append(planes.colour)
    return images


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
    net = net.to(memory_format=torch.channels_last)
    folders = [p for d in args.data for p in ([d] if any(d.glob("*.png")) else sorted(x for x in d.iterdir()
                                                                                          if x.is_dir()))]
    sources = load_sources(folders)
    # Fathers no smaller than the crop keep every batch at the full crop size.
    pool = FatherPool.build(sources, args.scale_factor, max(args.crop, min_father_side(args.scale_factor)))
    log.info("%d images from %s, %d fathers with downscaled copies", len(sources),
             ", ".join(f.name for f in folders), len(pool.fathers))
    downscale = make_downscale(args.scale_factor, None)
    rng = np.random.default_rng(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    budget = args.minutes * 60
    started = last_save = time.monotonic()
    iteration, running = 0, None

    def save(final: bool) -> None:
        recipe = {
            "data": [f.name for f in folders], "images": len(sources), "crop": args.crop, "batch": args.batch,
            "lr": args.lr, "lr_end": args.lr_end, "schedule": "cosine over wall-clock time",
            "scale_factor": args.scale_factor, "noise_std": args.noise_std, "seed": args.seed,
            "degradation": "MATLAB bicubic downscale, bicubic upscale (as the engine's LR sons)",
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
