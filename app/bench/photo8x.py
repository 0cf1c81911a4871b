"""The photo8x protocol: the exact web job path on HR photos made 8x smaller and JPEG-compressed, scored on the HR.

Each photo is degraded several ways (DEGRADATIONS), its most detailed regions are enlarged 8x by the web job
path under each method (METHODS: config changes) and by each peer (PEERS: other super-resolvers, which enlarge the
whole small photo once; each region is cut out of that at 8x coordinates), and the results are scored against the
HR pixels (Y-PSNR/SSIM, gain over bicubic, seconds, iterations).

    python -m app.bench photo8x --data ../shared/data/SunHays80 ../shared/data/Urban100 --photos 3 --regions 2
    python -m app.bench photo8x --methods job off waifu2x    # waifu2x: see app/bench/peers.py to install it
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from app.bench import peers
from app.bench.scoring import (bicubic_downscale, crop_to_multiple, decode_rgb, mean_of, parse_overrides, score,
                               setup_logging, table, with_changes, write_report)
from app.config import Settings, load_settings
from app.engine import bicubic_resize
from app.engine.degradation import blur_downscale, gaussian_kernel
from app.engine.jpeg import JpegProfile
from app.engine.metrics import rgb_to_y
from app.engine.zssr import warm_up
from app.errors import ConfigError
from app.jobs.backend import service_engine_config
from app.jobs.model import Box, JobOutput, JobRequest
from app.jobs.progress import ProgressTracker
from app.jobs.work import run_zssr
from app.web.uploads import read_photo

log = logging.getLogger(__name__)

SCALE = 8  # the web job's enlargement
REGION = 64  # a side of a region in small-photo pixels (512 HR pixels): the web's default crop
REGION_STRIDE = 16
SHAVE = 16  # HR pixels shaved from every side before scoring
DEFAULT_DATA = ["../shared/data/SunHays80", "../shared/data/Urban100"]
BICUBIC = "bicubic"

# Each method is a set of flat config changes on top of config.json (and --set); the method's changes win.
METHODS: dict[str, dict[str, Any]] = {
    "job": {},  # the web job as configured
    # Training off: the warm start alone. A budget already spent when the first step starts trains nothing
    # (0.05 s would still let the first gradual step take an Adam step, which moves every weight by the rate).
    "off": {"job_time_budget_s": 1e-6},
    "zero-shot": {"warm_start": None, "later_warm_start": None, "lr": 1e-3},  # no warm start, the same budget
    # The job without the held-out judgement: every step's learning kept, whatever it does.
    "no-check": {"learning_check": False},
    # The job without the blurry-photo gate: every photo learns, however blurry it reads.
    "no-gate": {"blurry_photo_std": None},
}
DEFAULT_METHODS = ["job", "off", "zero-shot"]
# Each peer is loaded once by its loader (CPU threads -> the peer, or None when it cannot run: its row is skipped).
# A peer's seconds are those of enlarging the whole photo, which every region of that photo shares.
PEERS = {"waifu2x": peers.load_waifu2x}


@dataclass(frozen=True)
class Degradation:
    """How an HR photo is made small: cropped to a multiple of 8, then either MATLAB bicubic x1/8
    (`blur_sigma` None) or a Gaussian blur of `blur_sigma` HR pixels sampled every 8th pixel, each sample at the
    centre of its 8x8 block (HR position 8i + 3.5, where bicubic puts small pixel i too, so that results and
    truth line up; keeping pixel 8i instead would shift every result 3.5 HR pixels from the truth), plus Gaussian noise of `noise_std` (in [0, 1] units, blur degradations only), rounded to uint8 and saved as a
    JPEG of `quality` (Pillow, default 4:2:0 chroma subsampling)."""

    name: str
    blur_sigma: float | None = None
    noise_std: float = 0.0
    quality: int = 85

    def __post_init__(self) -> None:
        if self.noise_std and self.blur_sigma is None:
            raise ValueError(f"{self.name}: noise is added to the blurred samples; give blur_sigma too")

    def small(self, hr: np.ndarray, seed: int = 0) -> np.ndarray:
        """(H, W, 3) uint8 HR -> (H // 8, W // 8, 3) uint8, before JPEG; the noise is drawn from `seed`."""
        hr = crop_to_multiple(hr, SCALE)
        if self.blur_sigma is None:
            return bicubic_downscale(hr, SCALE)
        # Out to 4 sigma: what lies beyond is under 0.1 of a grey level.
        size = 2 * int(np.ceil(4 * self.blur_sigma)) + 2 * SCALE + 1
        kernel = torch.from_numpy(gaussian_kernel(self.blur_sigma, self.blur_sigma, 0.0, SCALE, size))[None]
        planes = torch.from_numpy(hr.transpose(2, 0, 1).astype(np.float64))[None]
        small = blur_downscale(planes, kernel, SCALE)[0].permute(1, 2, 0).numpy()
        if self.noise_std:
            small = small + np.random.default_rng(seed).normal(0.0, self.noise_std * 255.0, small.shape)
        return np.clip(np.round(small), 0, 255).astype(np.uint8)

    def __call__(self, hr: np.ndarray, seed: int = 0) -> bytes:
        """The JPEG file bytes of the small photo."""
        buffer = io.BytesIO()
        Image.fromarray(self.small(hr, seed)).save(buffer, format="JPEG", quality=self.quality)
        return buffer.getvalue()


DEGRADATIONS = {d.name: d for d in (
    Degradation("bicubic-q85"),
    Degradation("blur3-q85", blur_sigma=3.0),
    Degradation("blur5-q85", blur_sigma=5.0),
    Degradation("blur3-noise-q85", blur_sigma=3.0, noise_std=2 / 255),
    Degradation("bicubic-q60", quality=60),
)}


def choose_regions(small: np.ndarray, count: int, size: int = REGION, stride: int = REGION_STRIDE) -> list[Box]:
    """The `count` most detailed non-overlapping `size`-pixel windows of an (H, W, 3) uint8 photo on a
    `stride` grid, most detailed first; detail is the spread (std) of the window's BT.601 luma. A photo smaller
    than `size` gets windows shrunk to it, as the web shrinks its crop."""
    luma = rgb_to_y(small)
    height, width = luma.shape
    w, h = min(size, width), min(size, height)
    candidates = [(float(luma[y:y + h, x:x + w].std()), y, x)
                  for y in range(0, height - h + 1, stride) for x in range(0, width - w + 1, stride)]
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    chosen: list[Box] = []
    for _, y, x in candidates:
        if len(chosen) == count:
            break
        if all(abs(x - b.x) >= w or abs(y - b.y) >= h for b in chosen):
            chosen.append(Box(x, y, w, h))
    return chosen


def run_job(jpeg_bytes: bytes, region: Box, settings: Settings, seed: int) -> JobOutput:
    """One web job on an uploaded JPEG, as the web service and its in-memory runner run it."""
    photo = read_photo(jpeg_bytes, settings.service)
    request = JobRequest.from_photo(photo, region, settings.service.train_max_side, seed=seed,
                                    jpeg=JpegProfile.read(jpeg_bytes), context_px=settings.service.context_px)
    engine = service_engine_config(settings)
    tracker = ProgressTracker(engine.scale_times, engine.num_epochs, engine.time_budget_s, engine.scale_factor)
    return run_zssr(request, engine, tracker, lambda: False)


def job_result(jpeg_bytes: bytes, region: Box, settings: Settings, seed: int) -> tuple[np.ndarray, dict]:
    """One web job's (8h, 8w, 3) uint8 result and its row's facts."""
    output = run_job(jpeg_bytes, region, settings, seed)
    r = output.result
    return decode_rgb(output.sr_png), {"seconds": r.seconds, "iterations": r.iterations, "device": r.device,
                                       "budget_exhausted": r.budget_exhausted, "weights": r.weights,
                                       "learning": None if r.learning is None else list(r.learning)}


def bicubic_region(photo: Image.Image, region: Box, context_px: int = 0) -> np.ndarray:
    """The job's bicubic enlargement of a region (as app.jobs.work.run_zssr makes it: MATLAB bicubic x8 of the
    crop with up to `context_px` photo pixels around it, the crop's part cut out), (8h, 8w, 3) uint8. Bicubic x8
    reaches 2 small pixels, so inside the 16 px that scoring shaves it is the crop alone's."""
    context = region.grown(context_px, photo.size)
    enlarged = bicubic_resize(photo.crop(context.as_pil()), SCALE)
    return np.asarray(enlarged.crop(region.within(context, SCALE)).convert("RGB"))


def hr_region(hr: np.ndarray, region: Box) -> np.ndarray:
    """The pixels under a small-photo region of an 8x image: the HR photo, or a peer's enlargement of the whole
    small photo."""
    return hr[region.y * SCALE:(region.y + region.height) * SCALE, region.x * SCALE:(region.x + region.width) * SCALE]


def summarize(rows: list[dict], methods: list[str]) -> dict[str, dict]:
    """Per degradation: bicubic's mean PSNR/SSIM; per method the mean gain over bicubic (dB), PSNR, SSIM,
    seconds and iterations; and the learning gain, job minus off over the regions both have run on."""
    summary = {}
    for degradation in dict.fromkeys(r["degradation"] for r in rows):
        own = [r for r in rows if r["degradation"] == degradation]
        bicubic = [r for r in own if r["method"] == BICUBIC]
        entry: dict[str, Any] = {"regions": len(bicubic), "bicubic_psnr": mean_of(bicubic, "psnr"),
                                 "bicubic_ssim": mean_of(bicubic, "ssim"), "methods": {}, "learning_gain": None}
        for method in methods:
            done = [r for r in own if r["method"] == method]
            if done:  # a peer has no iterations
                entry["methods"][method] = {key: mean_of(done, key) if all(r[key] is not None for r in done) else None
                                            for key in ("gain", "psnr", "ssim", "seconds", "iterations")}
        psnr = {(r["photo"], r["region"], r["method"]): r["psnr"] for r in own}
        learned = [psnr[key[:2] + ("job",)] - psnr[key[:2] + ("off",)] for key in psnr
                   if key[2] == "job" and key[:2] + ("off",) in psnr]
        if learned:
            entry["learning_gain"] = sum(learned) / len(learned)
        summary[degradation] = entry
    return summary


def summary_table(report: dict) -> list[str]:
    methods = report["methods"]
    header = ["degradation", "regions", "bicubic PSNR", "bicubic SSIM"]
    for method in methods:
        header += [f"{method} dB vs bicubic", f"{method} SSIM", f"{method} s/job"]
    learning = "job" in methods and "off" in methods
    if learning:
        header.append("learning gain (job - off) dB")
    rows = []
    for degradation, entry in report["summary"].items():
        row = [degradation, str(entry["regions"]), f"{entry['bicubic_psnr']:.2f}", f"{entry['bicubic_ssim']:.4f}"]
        for method in methods:
            m = entry["methods"].get(method)
            row += [f"{m['gain']:+.2f}", f"{m['ssim']:.4f}", f"{m['seconds']:.1f}"] if m else ["-", "-", "-"]
        if learning:
            gain = entry["learning_gain"]
            row.append("-" if gain is None else f"{gain:+.2f}")
        rows.append(row)
    return table(header, rows)


def markdown(report: dict) -> str:
    def number(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    rows = [[r["photo"], r["degradation"], str(r["region"]), r["method"], f"{r['psnr']:.2f}", f"{r['ssim']:.4f}",
             f"{r['gain']:+.2f}", number(r["seconds"], ".1f"), number(r["iterations"], "d")]
            for r in report["rows"]]
    return "\n".join([
        f"# ZSSR photo8x benchmark: the web job on {', '.join(report['data'])}", "",
        f"{report['photos']} photos a folder, {report['regions']} regions of {REGION}x{REGION} small-photo pixels "
        f"each, 8x against the HR photo (Y, {SHAVE} px shaved). Device: {report['device']}. "
        f"Torch {report['torch']}. Started {report['started']}.", "",
        "## Mean per degradation", "", *summary_table(report), "",
        "## Every job", "",
        *table(["photo", "degradation", "region", "method", "PSNR", "SSIM", "dB vs bicubic", "seconds",
                "iterations"], rows), ""])


def save_strip(path: Path, panels: list[np.ndarray]) -> None:
    """Side by side, left to right: bicubic, each method's result, the truth."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.hstack(panels)).save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.bench photo8x", description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=DEFAULT_DATA, help="folders of HR PNG photos")
    parser.add_argument("--photos", type=int, default=3, help="the first N photos of each folder, by name")
    parser.add_argument("--regions", type=int, default=2, help="regions per photo and degradation")
    parser.add_argument("--degradations", nargs="+", default=list(DEGRADATIONS), choices=list(DEGRADATIONS))
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, choices=[*METHODS, *PEERS],
                        help=f"job methods and peers (waifu2x, an extra: {peers.WAIFU2X_INSTALL})")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides for every method (a method's own changes win); "
                             "profiles.NAME.KEY=VALUE changes one input profile")
    parser.add_argument("--config", help="config.json path (default: the repository's)")
    parser.add_argument("--out", default="bench-results", help="folder for the reports and strips/")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise and of every job")
    parser.add_argument("--strips", action=argparse.BooleanOptionalAction, default=True,
                        help="save bicubic | methods | truth strips under OUT/strips/")
    args = parser.parse_args(argv)
    if args.photos < 1 or args.regions < 1:
        parser.error("--photos and --regions take a whole number from 1")
    setup_logging()

    overrides = parse_overrides(args.set, parser)
    try:
        base = with_changes(load_settings(args.config), overrides)
        settings = {method: base.replace(**METHODS[method]) for method in args.methods if method in METHODS}
    except ConfigError as exc:
        parser.error(str(exc))
    paths = [p for d in args.data for p in sorted(Path(d).glob("*.png"))[:args.photos]]
    if not paths:
        parser.error("no photos found")
    threads = service_engine_config(base).num_threads or torch.get_num_threads()
    loaded = {name: PEERS[name](threads) for name in dict.fromkeys(args.methods) if name in PEERS}
    methods = [m for m in args.methods if m in settings or loaded[m] is not None]
    report: dict[str, Any] = {
        "protocol": "photo8x", "data": args.data, "photos": args.photos, "regions": args.regions,
        "degradations": args.degradations, "methods": methods, "seed": args.seed,
        "skipped": [m for m in args.methods if m not in methods],
        "peers": {name: peer.device for name, peer in loaded.items() if peer is not None},
        "config": args.config, "overrides": overrides, "torch": torch.__version__,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"), "device": None,
        "engine": {method: dataclasses.asdict(service_engine_config(s)) for method, s in settings.items()},
        "rows": [], "summary": {}}
    out = Path(args.out)
    stem = "-".join(["photo8x", *args.methods, *([] if args.degradations == list(DEGRADATIONS)
                                                   else args.degradations)])

    def record(row: dict) -> None:
        report["rows"].append(row)
        report["summary"] = summarize(report["rows"], methods)
        write_report(out, stem, report, markdown(report))

    warm_up()
    for path in paths:
        photo = f"{path.parent.name}-{path.stem}"
        hr = crop_to_multiple(np.asarray(Image.open(path).convert("RGB")), SCALE)
        for name in args.degradations:
            jpeg_bytes = DEGRADATIONS[name](hr, args.seed)
            photo_image = read_photo(jpeg_bytes, base.service)
            small = np.asarray(photo_image)
            profile = JpegProfile.read(jpeg_bytes)
            enlarged = {}  # peer -> (the whole photo at 8x, seconds): once per photo and degradation
            for method in methods:
                if method in loaded:
                    start = time.perf_counter()
                    whole = loaded[method].enlarge(small, profile.quality if profile else None)
                    enlarged[method] = whole, time.perf_counter() - start
                    log.info("%s %s %s: the whole %dx%d photo enlarged in %.1f s", photo, name, method,
                             small.shape[1], small.shape[0], enlarged[method][1])
            for k, region in enumerate(choose_regions(small, args.regions)):
                truth = hr_region(hr, region)
                where = {"photo": photo, "degradation": name, "region": k,
                         "box": [region.x, region.y, region.width, region.height]}
                panels = [bicubic_region(photo_image, region, base.service.context_px)]
                bicubic = {**where, "method": BICUBIC, **score(panels[0], truth, SHAVE), "gain": 0.0,
                           "seconds": None, "iterations": None}
                record(bicubic)
                for method in methods:
                    if method in enlarged:
                        whole, seconds = enlarged[method]
                        sr = hr_region(whole, region)
                        facts = {"seconds": seconds, "iterations": None, "device": loaded[method].device}
                    else:
                        sr, facts = job_result(jpeg_bytes, region, settings[method], args.seed)
                        report["device"] = facts["device"]
                    scores = score(sr, truth, SHAVE)
                    iterations = "-" if facts["iterations"] is None else facts["iterations"]
                    log.info("%s %s r%d %s: %.2f dB (%+.2f vs bicubic), SSIM %.4f, %.1f s, %s iterations, %s",
                             photo, name, k, method, scores["psnr"], scores["psnr"] - bicubic["psnr"],
                             scores["ssim"], facts["seconds"], iterations, facts["device"])
                    panels.append(sr)
                    record({**where, "method": method, **scores, "gain": scores["psnr"] - bicubic["psnr"], **facts})
                if args.strips:
                    save_strip(out / "strips" / f"strip-{photo}-{name}-r{k}.png", [*panels, truth])
    sys.stdout.write("\n".join(summary_table(report)) + "\n")
    return 0
