"""Pre-trains the warm-start networks on external images (T91, General100, BSD200), never on benchmark sets, in
runs that stop and resume exactly and accumulate over sessions.

    # start a run planned over 24,000 iterations, saving its state every 5 minutes
    nohup nice python -m app.pretrain --data ../shared/data/train --photo --iterations 24000 \
        --init app/engine/weights/zssr_x2_photo.pt --state app/engine/weights/training/photo_x2.pt &
    # carry it on (in the next session, or on a lent GPU with --device cuda)
    nohup nice python -m app.pretrain --resume app/engine/weights/training/photo_x2.pt &
    # a later gradual step's weights: trained on the enlargements of the step before (the 8x job's steps 2 and 3)
    nohup nice python -m app.pretrain --data ../shared/data/train --photo \
        --cascade app/engine/weights/zssr_x2_photo.pt --init app/engine/weights/zssr_x2.pt --iterations 8000 \
        --state app/engine/weights/training/later_x2b.pt &
    # the photo weights for sharp JPEGs: continued with three quarters of the sons made small by bicubic
    nohup nice python -m app.pretrain --data ../shared/data/train --photo --bicubic_share 0.75 --jpeg_share 0.9 \
        --init app/engine/weights/zssr_x2_photo.pt --iterations 1500 --lr 1e-4 --lr_end 1e-6 --warmup 50 \
        --seed 7 --state /tmp/photo_sharp_x2.pt &
    # write the weights alone (no optimizer state) for config.json's warm_start
    python -m app.pretrain --export app/engine/weights/training/photo_x2.pt --out app/engine/weights/zssr_x2_photo.pt

The learning rate follows a cosine over the planned iterations (not wall-clock time), and every batch is a pure
function of (seed, iteration): the state file (weights, Adam's moments, the iteration reached and the recipe) is all
a resumed run needs to continue as if it had never stopped. The recipe records every segment (iterations, device,
seconds) and the loss curve; it travels inside the weights and in a JSON file beside them.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

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
from app.engine.warm_start import file_arch, load_weights, read_checkpoint, save_weights, sha256, with_arch

log = logging.getLogger("app.pretrain")

FORBIDDEN = {"Set5", "Set14", "BSD100", "B100", "Urban100", "SunHays80"}
# The loss curve keeps one point (the mean training loss) per this many iterations.
CURVE_EVERY = 100


def load_sources(folders: list[Path]) -> list[torch.Tensor]:
    images = []
    for folder in folders:
        if folder.name in FORBIDDEN or any(p in FORBIDDEN for p in folder.parts):
            raise SystemExit(f"refusing to train on benchmark set {folder}")
        for path in sorted(folder.rglob("*.png")):
            planes = to_planes(load_image(path).convert("RGB"))
            images.append(planes.colour)
    return images


def image_folders(data: list[Path]) -> list[Path]:
    """The folders of PNGs under each of `data` (a folder of PNGs is itself one)."""
    return [p for d in data for p in ([d] if any(d.glob("*.png")) else sorted(x for x in d.iterdir() if x.is_dir()))]


class PhotoDegradation:
    """LR sons as real photos arrive: a random blur (or MATLAB bicubic), sensor noise, then JPEG at a random quality.

    The ranges cover what a photo's own x2 sons see at test time (app.engine.degradation): Gaussian blurs of std
    0.3 to 1.6 HR px (isotropic or not), noise up to 0.02, JPEG quality 30 to 95 with 4:2:0 or 4:4:4 chroma.
    """

    def __init__(self, factor: int, bicubic_share: float = 0.25, jpeg_share: float = 0.75):
        self.factor = factor
        self.bicubic_share = bicubic_share  # of the crops made small by MATLAB bicubic (the rest: a Gaussian blur)
        self.jpeg_share = jpeg_share  # of the crops compressed
        self.profiles: dict[tuple[int, int], JpegProfile] = {}

    def recipe(self) -> str:
        return (f"per crop: {self.bicubic_share:.0%} MATLAB bicubic, else Gaussian blur std U(0.3, 1.6) px per axis "
                "(50% isotropic), random angle, then sampling x2; noise std U(0, 0.02) on 50%; JPEG quality "
                f"U(30, 95) on {self.jpeg_share:.0%} (4:2:0 on 70% of those, else 4:4:4), through Pillow; bicubic "
                "enlargement back")

    def _kernel(self, rng: np.random.Generator) -> np.ndarray:
        sy = rng.uniform(0.3, 1.6)
        sx = sy if rng.random() < 0.5 else rng.uniform(0.3, 1.6)
        return gaussian_kernel(sy, sx, rng.uniform(0, math.pi), self.factor, size=13)

    def _jpeg(self, lr: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        pixels = (lr.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        out = []
        for image in pixels:
            if rng.random() < self.jpeg_share:
                key = (int(rng.integers(30, 96)), 2 if rng.random() < 0.7 else 0)
                profile = self.profiles.get(key)
                if profile is None:  # made once per key: reading a profile back costs more than a crop's JPEG
                    profile = self.profiles[key] = JpegProfile.standard(*key)
                image = profile.roundtrip(np.ascontiguousarray(image))
            out.append(image)
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(lr.device, lr.dtype) / 255

    def __call__(self, hr: torch.Tensor, rng: np.random.Generator, generator: torch.Generator) -> torch.Tensor:
        n = hr.shape[0]
        bicubic = torch.from_numpy(rng.random(n) < self.bicubic_share)
        kernels = torch.from_numpy(np.stack([self._kernel(rng) for _ in range(n)]))
        lr = blur_downscale(hr, kernels, self.factor)
        if bicubic.any():
            lr[bicubic.to(hr.device)] = make_downscale(float(self.factor), None)(hr[bicubic.to(hr.device)])
        noise_std = torch.from_numpy(np.where(rng.random(n) < 0.5, rng.uniform(0, 0.02, n), 0.0))
        noise = torch.randn(lr.shape, generator=generator, dtype=lr.dtype).to(lr.device)
        lr = lr + noise_std.to(lr)[:, None, None, None] * noise
        return upscale(self._jpeg(lr, rng), float(self.factor), tuple(hr.shape[-2:]))


@dataclass
class Plan:
    """What a run is, fixed when it starts: its data, batches, degradation and learning-rate schedule."""

    data: list[str]
    iterations: int  # the schedule's length: the cosine reaches lr_end here
    crop: int = 64
    batch: int = 16
    lr: float = 1e-3
    lr_end: float = 1e-5
    scale_factor: float = 2.0
    noise_std: float = 0.0
    photo: bool = False
    seed: int = 0
    init: str | None = None  # the weights the run started from
    cascade: str | None = None  # the step before's weights: the sons are its enlargements (later gradual steps)
    # HR pixels of context on each side that the step before sees and the loss does not (its borders are not the
    # job's: there it enlarges whole photos); 0 in runs from before it was recorded
    cascade_margin: int = 0
    # iterations over which the rate climbs linearly to the cosine's (0 in runs from before it was recorded): a
    # deep network from scratch at the full rate at once lets its last hidden layer's units die, and it learns
    # nothing but the bicubic residual of zero (measured: a 12-layer folded network at 6e-4)
    warmup: int = 0
    # with `photo`: the shares of the crops made small by bicubic (not blurred) and compressed (the shares of the
    # runs from before they were recorded)
    bicubic_share: float = 0.25
    jpeg_share: float = 0.75

    def photo_degradation(self) -> "PhotoDegradation | None":
        return PhotoDegradation(int(self.scale_factor), self.bicubic_share, self.jpeg_share) if self.photo else None

    @property
    def father_side(self) -> int:
        """The side of the crop drawn from a father: the training crop, with the cascade's context around it."""
        return self.crop + (2 * self.cascade_margin if self.cascade is not None else 0)

    def learning_rate(self, iteration: int) -> float:
        """Cosine from `lr` at iteration 0 to `lr_end` at `iterations` (and after), times a linear climb from
        1 / warmup to 1 over the first `warmup` iterations."""
        progress = min(1.0, iteration / self.iterations)
        cosine = self.lr_end + 0.5 * (self.lr - self.lr_end) * (1 + math.cos(math.pi * progress))
        return cosine * min(1.0, (iteration + 1) / self.warmup) if self.warmup else cosine

    def degradation(self) -> str:
        photo = self.photo_degradation()
        first = photo.recipe() if photo is not None else \
            "MATLAB bicubic downscale, bicubic upscale (as the engine's LR sons)"
        if self.cascade is None:
            return first
        return (f"cascade (a later gradual step's input): the father made small by MATLAB bicubic "
                f"x{self.scale_factor:g}, that made small again as the first step's sons are ({first}), enlarged "
                f"by the step before's network {Path(self.cascade).name}, then bicubic to the father's size")


@dataclass
class Progress:
    """Where a run stands: the iteration reached, its segments (one per invocation) and its loss curve."""

    iteration: int = 0
    segments: list[dict] = field(default_factory=list)
    curve: list[list[float]] = field(default_factory=list)  # [iteration, mean loss over the CURVE_EVERY before]

    def hours(self) -> float:
        return sum(s["seconds"] for s in self.segments) / 3600


Batch = tuple[torch.Tensor, torch.Tensor]


def batch_maker(plan: Plan, pool: FatherPool, device: torch.device | None = None) -> Callable[[int], Batch]:
    """(iteration) -> (lr_son, hr_father), each (batch, C, crop, crop), drawn from the iteration's own random
    streams: the same batch whenever and wherever it is made, so a resumed run sees what an unbroken one would.

    With `plan.cascade` (the weights of the step before), the son is what a later gradual step of the 8x job
    enlarges: the step before's enlargement of the father made small twice (through the photo degradation with
    `plan.photo`), not a clean bicubic copy."""
    factor = int(plan.scale_factor)
    downscale = make_downscale(plan.scale_factor, None)
    photo = plan.photo_degradation()
    before = None
    if plan.cascade is not None:
        before = ZSSRNet(with_arch(EngineConfig(), file_arch(plan.cascade, "--cascade")))
        load_weights(before, plan.cascade, plan.scale_factor, "--cascade")
        before = before.to(device or torch.device("cpu")).eval()

    def degrade(hr: torch.Tensor, rng: np.random.Generator, generator: torch.Generator) -> torch.Tensor:
        if photo is not None:
            return photo(hr, rng, generator)
        return lr_son(hr, plan.scale_factor, downscale, plan.noise_std, generator)

    def make(iteration: int) -> Batch:
        rng = np.random.default_rng([plan.seed, iteration])
        generator = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
        # A cascade's father is made small twice: its crop keeps whole pixels at both sizes.
        hr = pool.sample(rng, plan.father_side, plan.batch, factor * factor if before is not None else factor)
        if before is None:
            return degrade(hr, rng, generator), hr
        middle = downscale(hr).clamp(0, 1)
        with torch.no_grad():
            enlarged = before(degrade(middle, rng, generator).to(next(before.parameters()).device)).clamp(0, 1)
        son = upscale(enlarged.to(hr.device), plan.scale_factor, tuple(hr.shape[-2:]))
        m = plan.cascade_margin
        return (son, hr) if m == 0 else (son[..., m:-m, m:-m], hr[..., m:-m, m:-m])

    return make


def recipe(plan: Plan, progress: Progress, previous: dict | None, images: dict[str, int] | None = None) -> dict:
    """How the weights were made, for the weights file and the JSON beside it; `images` counts the training PNGs
    of each folder the run read."""
    last_loss = progress.curve[-1][1] if progress.curve else None
    out = {
        "data": plan.data, **({} if images is None else {"folders": images, "images": sum(images.values())}),
        "crop": plan.crop, "batch": plan.batch, "lr": plan.lr, "lr_end": plan.lr_end,
        "schedule": f"cosine over {plan.iterations} iterations", "planned_iterations": plan.iterations,
        "scale_factor": plan.scale_factor, "noise_std": plan.noise_std, "seed": plan.seed,
        "degradation": plan.degradation(),
        "augmentation": "father scales 1.0-0.5 sampled by area, 8 dihedral transforms, random crops",
        "loss": "L1", "optimizer": "Adam", "iterations": progress.iteration,
        "hours": round(progress.hours(), 3), "final_loss": last_loss,
        "complete": progress.iteration >= plan.iterations, "init": plan.init,
        "segments": progress.segments, "curve": progress.curve, "plan": asdict(plan),
    }
    if previous is not None:
        out["continued_from"] = previous
    return out


def write_json(weights: Path, content: dict) -> None:
    content = dict(content, sha256=sha256(weights))
    weights.with_suffix(".json").write_text(json.dumps(content, indent=2) + "\n")


def save_state(path: Path, net: torch.nn.Module, config: EngineConfig, optimizer: torch.optim.Optimizer,
               plan: Plan, progress: Progress, previous: dict | None, images: dict[str, int] | None = None) -> None:
    """The resumable state: weights (loadable as a warm start), Adam's state, the progress; written whole, then
    moved into place, so a kill mid-save leaves the last good state."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    made = recipe(plan, progress, previous, images)
    save_weights(net, config, tmp, made, extra={"optimizer": optimizer.state_dict(),
                                                  "progress": asdict(progress), "previous": previous})
    tmp.replace(path)
    write_json(path, made)


def export(state: Path, out: Path) -> None:
    """The weights of a state file alone (no optimizer state), with its recipe, for config.json."""
    checkpoint = read_checkpoint(state, "--export")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.save({"arch": checkpoint["arch"], "state_dict": checkpoint["state_dict"], "recipe": checkpoint["recipe"]},
               tmp)
    tmp.replace(out)
    write_json(out, checkpoint["recipe"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app.pretrain", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", help="folders of training PNGs (a new run)")
    parser.add_argument("--state", type=Path, help="where a new run keeps its resumable state")
    parser.add_argument("--resume", type=Path, help="carry on the run whose state this file holds")
    parser.add_argument("--export", type=Path, help="write the weights of this state file to --out, then stop")
    parser.add_argument("--out", type=Path, help="with --export: the weights file to write")
    parser.add_argument("--iterations", type=int,
                        help="the schedule's length (a new run), or a longer one for a resumed run")
    parser.add_argument("--stop_at", type=int, help="stop (saving) at this iteration, before the plan's end")
    parser.add_argument("--minutes", type=float, help="stop (saving) after this much wall-clock time")
    parser.add_argument("--width", type=int, default=64, help="a new run from scratch: model_width")
    parser.add_argument("--depth", type=int, default=8, help="a new run from scratch: model_depth")
    parser.add_argument("--fold", type=int, default=1, choices=(1, 2, 3, 4),
                        help="a new run from scratch: model_fold (2: layers on 2x2 blocks, sub-pixel output)")
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr_end", type=float, default=1e-5)
    parser.add_argument("--warmup", type=int, default=200,
                        help="a new run's iterations of linear climb to the full rate")
    parser.add_argument("--scale_factor", type=float, default=2.0)
    parser.add_argument("--noise_std", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", type=Path, help="a new run starts from these weights (a file this script wrote)")
    parser.add_argument("--photo", action="store_true",
                        help="sons degraded as real photos (blur, noise, JPEG) instead of clean bicubic")
    parser.add_argument("--bicubic_share", type=float, default=0.25,
                        help="with --photo: the share of crops made small by MATLAB bicubic (the rest are blurred)")
    parser.add_argument("--jpeg_share", type=float, default=0.75,
                        help="with --photo: the share of crops compressed as JPEG")
    parser.add_argument("--cascade", type=Path,
                        help="the step before's weights: train a later gradual step on its enlargements")
    parser.add_argument("--cascade_margin", type=int, default=16,
                        help="HR pixels of context around each cascade crop (a multiple of scale_factor squared)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: its default)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--save_every", type=float, default=300.0, help="seconds between saves of the state")
    args = parser.parse_args(argv)
    if args.export is not None:
        if args.out is None:
            parser.error("--export needs --out")
    elif args.resume is None and (args.data is None or args.state is None or args.iterations is None):
        parser.error("a new run needs --data, --state and --iterations (or --resume STATE)")
    square = int(args.scale_factor) ** 2
    if args.cascade is not None and args.cascade_margin % square:
        parser.error(f"--cascade_margin must be a multiple of {square} (scale_factor squared), got "
                     f"{args.cascade_margin}")
    for name in ("bicubic_share", "jpeg_share"):
        value = getattr(args, name)
        if not 0 <= value <= 1:
            parser.error(f"--{name} must be between 0 and 1, got {value}")
    if args.warmup < 0:
        parser.error(f"--warmup must be at least 0, got {args.warmup}")
    for name in ("iterations", "stop_at", "crop", "batch"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be at least 1, got {value}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.export is not None:
        export(args.export, args.out)
        log.info("wrote %s from %s", args.out, args.export)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    # The network: a resumed run's or an --init file's own, else the one the arguments describe.
    config = EngineConfig(model_width=args.width, model_depth=args.depth, model_fold=args.fold)
    checkpoint = None
    if args.resume is not None:
        checkpoint = read_checkpoint(args.resume, "--resume")
        if "progress" not in checkpoint:
            raise SystemExit(f"{args.resume} holds weights alone, not a run's state; start a run with --init")
        config = with_arch(config, checkpoint["arch"])
    elif args.init is not None:
        config = with_arch(config, file_arch(args.init, "--init"))
    torch.manual_seed(args.seed)  # a new run's initial weights; a resumed one loads its own
    net = ZSSRNet(config)
    optimizer_state, previous = None, None
    if checkpoint is not None:
        state_path = args.resume
        plan, progress = Plan(**checkpoint["recipe"]["plan"]), Progress(**checkpoint["progress"])
        if args.iterations is not None:
            if args.iterations < plan.iterations:
                raise SystemExit(f"--iterations {args.iterations} would shorten the plan of {plan.iterations}")
            plan.iterations = args.iterations
        net.load_state_dict(checkpoint["state_dict"])
        optimizer_state, previous = checkpoint["optimizer"], checkpoint.get("previous")
    else:
        state_path = args.state
        plan = Plan(data=[str(d) for d in args.data], iterations=args.iterations, crop=args.crop, batch=args.batch,
                    lr=args.lr, lr_end=args.lr_end, scale_factor=args.scale_factor, noise_std=args.noise_std,
                    photo=args.photo, seed=args.seed, init=None if args.init is None else str(args.init),
                    cascade=None if args.cascade is None else str(args.cascade),
                    cascade_margin=args.cascade_margin, warmup=args.warmup, bicubic_share=args.bicubic_share,
                    jpeg_share=args.jpeg_share)
        progress = Progress()
        if args.init is not None:
            previous = load_weights(net, args.init)["recipe"]
    device = select_device(args.device)
    net = net.to(device=device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=plan.lr)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    folders = image_folders([Path(d) for d in plan.data])
    sources = [s.to(device) for s in load_sources(folders)]
    images = {f.name: sum(1 for _ in f.rglob("*.png")) for f in folders}
    # Fathers no smaller than the crop keep every batch at the full crop size.
    pool = FatherPool.build(sources, plan.scale_factor, max(plan.father_side, min_father_side(plan.scale_factor)))
    log.info("%d images from %s, %d fathers with downscaled copies, on %s; iteration %d of %d", len(sources),
             ", ".join(f.name for f in folders), len(pool.fathers), describe(device), progress.iteration,
             plan.iterations)
    train(net, optimizer, plan, progress, batch_maker(plan, pool, device),
          save=lambda: save_state(state_path, net, config, optimizer, plan, progress, previous, images),
          device=device, stop_at=args.stop_at, minutes=args.minutes, save_every=args.save_every)
    log.info("saved %s at iteration %d of %d", state_path, progress.iteration, plan.iterations)
    return 0


def train(net: torch.nn.Module, optimizer: torch.optim.Optimizer, plan: Plan, progress: Progress,
          make: Callable[[int], Batch], save: Callable[[], None], device: torch.device, stop_at: int | None = None,
          minutes: float | None = None, save_every: float = 300.0) -> None:
    """Iterations from progress.iteration to the plan's end (or `stop_at`, or `minutes`), saving every
    `save_every` seconds, at the end and on SIGTERM or SIGINT. The next batch is made in a thread while the
    network trains on this one (Pillow's codecs and torch's kernels release the GIL)."""
    end = min(plan.iterations, stop_at or plan.iterations)
    segment = {"start": progress.iteration, "end": progress.iteration, "device": describe(device),
               "seconds": 0.0, "torch": str(torch.__version__),
               "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    progress.segments.append(segment)
    started = last_save = last_log = time.monotonic()
    deadline = started + minutes * 60 if minutes is not None else math.inf
    stopping = []

    def on_signal(signum, _frame) -> None:
        stopping.append(signum)

    previous_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

    def checkpoint() -> None:
        segment["end"], segment["seconds"] = progress.iteration, round(time.monotonic() - started, 1)
        save()

    losses: list[float] = []
    net.train()
    try:
        with ThreadPoolExecutor(max_workers=1) as prefetch:
            upcoming = prefetch.submit(make, progress.iteration) if progress.iteration < end else None
            while upcoming is not None and not stopping and time.monotonic() < deadline:
                son, hr = upcoming.result()
                following = progress.iteration + 1
                upcoming = prefetch.submit(make, following) if following < end else None
                for group in optimizer.param_groups:
                    group["lr"] = plan.learning_rate(progress.iteration)
                son = son.to(device).contiguous(memory_format=torch.channels_last)
                loss = F.l1_loss(net(son), hr.to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                progress.iteration += 1
                losses.append(float(loss.detach()))
                if progress.iteration % CURVE_EVERY == 0:
                    progress.curve.append([progress.iteration, round(float(np.mean(losses[-CURVE_EVERY:])), 6)])
                now = time.monotonic()
                if now - last_log > 60 or progress.iteration == end:
                    done = progress.iteration - segment["start"]
                    rate = done / (now - started)
                    log.info("iteration %d/%d, %.2f it/s, loss %.5f, lr %.2e, ETA %.1f h", progress.iteration,
                             plan.iterations, rate, float(np.mean(losses[-CURVE_EVERY:])),
                             plan.learning_rate(progress.iteration), (plan.iterations - progress.iteration)
                             / max(rate, 1e-9) / 3600)
                    last_log = now
                if now - last_save > save_every:
                    checkpoint()
                    last_save = time.monotonic()
            if upcoming is not None:
                upcoming.cancel()
    finally:
        checkpoint()
        for s, handler in previous_handlers.items():
            signal.signal(s, handler)


if __name__ == "__main__":
    sys.exit(main())
