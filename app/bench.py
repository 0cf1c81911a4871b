"""The benchmark: ZSSR against bicubic on HR image folders (PSNR/SSIM on Y, time, iterations), per preset.

    python -m app.bench --data ../shared/data/Set5 --scale 2 --preset paper fast
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from app.config import parse_value
from app.engine.config import EngineConfig
from app.engine.image_io import to_uint8
from app.engine.metrics import psnr_y, ssim_y
from app.engine.presets import PRESETS, preset_config
from app.engine.resize import imresize
from app.engine.zssr import super_resolve
from app.errors import ConfigError

log = logging.getLogger("app.bench")


def make_pair(path: Path, scale: int) -> tuple[np.ndarray, Image.Image]:
    """HR (uint8, cropped to a multiple of `scale`) and its MATLAB-bicubic LR image (uint8, as a PIL image)."""
    hr = np.asarray(Image.open(path).convert("RGB"))
    h, w = hr.shape[0] - hr.shape[0] % scale, hr.shape[1] - hr.shape[1] % scale
    hr = hr[:h, :w]
    x = torch.from_numpy(hr.transpose(2, 0, 1).astype(np.float64) / 255.0)[None]
    lr = to_uint8(imresize(x, 1 / scale))
    return hr, Image.fromarray(lr)


def gradual_steps(scale: int) -> tuple[float, int]:
    """The paper's gradual schedule: x2 steps for powers of two, one step otherwise."""
    steps = int(round(math.log2(scale)))
    return (2.0, steps) if 2 ** steps == scale else (float(scale), 1)


def run_image(path: Path, scale: int, config: EngineConfig) -> dict:
    hr, lr = make_pair(path, scale)
    lr_x = torch.from_numpy(np.asarray(lr).transpose(2, 0, 1).astype(np.float64) / 255.0)[None]
    bicubic = to_uint8(imresize(lr_x, scale))
    result = super_resolve(lr, config)
    sr = np.asarray(result.image.convert("RGB"))
    return {
        "image": path.stem, "size": f"{hr.shape[1]}x{hr.shape[0]}",
        "psnr": psnr_y(sr, hr, scale), "ssim": ssim_y(sr, hr, scale),
        "bicubic_psnr": psnr_y(bicubic, hr, scale), "bicubic_ssim": ssim_y(bicubic, hr, scale),
        "seconds": result.seconds, "iterations": result.iterations,
        "iterations_per_step": list(result.iterations_per_step), "device": result.device,
        "train_gflops": result.train_gflop / max(result.train_seconds, 1e-9),
        "infer_gflops": result.infer_gflop / max(result.infer_seconds, 1e-9),
    }


def summarize(rows: list[dict]) -> dict:
    return {
        "psnr": statistics.mean(r["psnr"] for r in rows), "ssim": statistics.mean(r["ssim"] for r in rows),
        "bicubic_psnr": statistics.mean(r["bicubic_psnr"] for r in rows),
        "bicubic_ssim": statistics.mean(r["bicubic_ssim"] for r in rows),
        "median_seconds": statistics.median(r["seconds"] for r in rows),
        "total_seconds": sum(r["seconds"] for r in rows),
        "median_iterations": statistics.median(r["iterations"] for r in rows),
        "train_gflops": statistics.median(r["train_gflops"] for r in rows),
        "infer_gflops": statistics.median(r["infer_gflops"] for r in rows),
    }


def markdown(report: dict) -> str:
    lines = [f"# ZSSR benchmark: x{report['scale']} on {', '.join(report['data'])}", "",
             f"Device: {report['device']}. Torch {report['torch']}. Started {report['started']}.", ""]
    for name, section in report["presets"].items():
        lines += [f"## Preset `{name}`", "",
                  "| image | size | ZSSR PSNR | ZSSR SSIM | bicubic PSNR | bicubic SSIM | seconds | iterations "
                  "| train GFLOP/s | infer GFLOP/s |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in section["images"]:
            its = "+".join(map(str, r["iterations_per_step"]))
            lines.append(f"| {r['image']} | {r['size']} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                         f"{r['bicubic_psnr']:.2f} | {r['bicubic_ssim']:.4f} | {r['seconds']:.1f} | {its} | "
                         f"{r['train_gflops']:.0f} | {r['infer_gflops']:.0f} |")
        s = section["summary"]
        lines += [f"| **mean / median** | | **{s['psnr']:.2f}** | **{s['ssim']:.4f}** | {s['bicubic_psnr']:.2f} | "
                  f"{s['bicubic_ssim']:.4f} | **{s['median_seconds']:.1f}** (median) | "
                  f"{s['median_iterations']:.0f} (median) | {s['train_gflops']:.0f} | {s['infer_gflops']:.0f} |", ""]
    names = list(report["presets"])
    if len(names) > 1:
        base = report["presets"][names[0]]["summary"]
        lines += ["## Side by side", "", f"| preset | mean PSNR | dB vs `{names[0]}` | median s | time ratio |",
                  "|---|---|---|---|---|"]
        for name in names:
            s = report["presets"][name]["summary"]
            lines.append(f"| {name} | {s['psnr']:.2f} | {s['psnr'] - base['psnr']:+.2f} | "
                         f"{s['median_seconds']:.1f} | {s['median_seconds'] / base['median_seconds']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True, help="folders of HR PNG images")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--preset", nargs="+", default=["fast"], choices=sorted(PRESETS))
    parser.add_argument("--images", nargs="*", help="only these image names (file stems)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="engine config overrides")
    parser.add_argument("--out", default="bench-results", help="folder for the markdown and JSON reports")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: expected KEY=VALUE")
        overrides[key] = parse_value(value)
    scale_factor, scale_times = gradual_steps(args.scale)
    try:
        configs = {name: preset_config(name, scale_factor=scale_factor, scale_times=scale_times, **overrides)
                   for name in args.preset}
    except ConfigError as exc:
        parser.error(str(exc))
    paths = sorted(p for d in args.data for p in Path(d).glob("*.png"))
    if args.images:
        paths = [p for p in paths if p.stem in set(args.images)]
    if not paths:
        parser.error("no images found")
    report = {"scale": args.scale, "data": args.data, "torch": torch.__version__,
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "presets": {}, "device": None}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"bench-x{args.scale}-{'-'.join(args.preset)}"
    for name, config in configs.items():
        rows = []
        for path in paths:
            row = run_image(path, args.scale, config)
            report["device"] = row["device"]
            log.info("%s %s: %.2f dB (bicubic %.2f), %.1f s, %d iterations", name, row["image"], row["psnr"],
                     row["bicubic_psnr"], row["seconds"], row["iterations"])
            rows.append(row)
            report["presets"][name] = {"config": config.__dict__.copy(), "images": rows, "summary": summarize(rows)}
            (out / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str))
            (out / f"{stem}.md").write_text(markdown(report))
    sys.stdout.write(markdown(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
