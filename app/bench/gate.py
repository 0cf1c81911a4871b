"""The quality gate: a small slice of every benchmark protocol, run with the shipped config, deterministically,
each figure held to a floor committed in gate_floors.json.

Every slice runs on fixed iteration counts and seeds (`iteration_budget` in place of the web job's wall-clock
budget), so a figure moves only when the code, the config or the weights do, and by float noise between CPUs,
which the floors file's tolerance covers. Seconds and iterations per second are printed beside a recorded figure
and never fail: timing drifts on shared machines.

    python -m app.bench gate                     # every slice; exit status 1 when any figure is below its floor
    python -m app.bench gate --only lossless     # some slices
    python -m app.bench gate --set profiles.kernel_given.learning_share=0.7   # try a change against the floors

A floor is raised by a commit that gives the measurement (`--write-floors` writes this machine's figures as the
new floors, never lower than the old ones unless `--lower` says so, which the commit then explains).
"""

from __future__ import annotations

import argparse
import base64
import copy
import io
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from app.bench import ideal, photo8x
from app.bench.scoring import (crop_to_multiple, decode_rgb, parse_overrides, score, setup_logging, table,
                               with_changes)
from app.config import REPOSITORY_ROOT, Settings, load_settings

log = logging.getLogger(__name__)

FLOORS = Path(__file__).with_name("gate_floors.json")
DATA = REPOSITORY_ROOT.parent / "shared" / "data"
# The web job's wall-clock budget (job_time_budget_s, 10 s) as iterations: what the 8x job reaches in it on the
# reference machine (a 2-core x86-64 CPU), split over its steps as the time is.
WEB_JOB_ITERATIONS = 290
# Two Set5 images for the ideal protocols (small ones: the slice's seconds stay low), on a fixed number of
# iterations (the profiles' own num_epochs, 400, would make the gate's minutes three times as many).
SET5 = ("butterfly", "woman")
IDEAL_ITERATIONS = 150
# The photo8x slice: the first photo of each 8x set, its most detailed region.
PHOTOS = ("SunHays80/img_001.png", "Urban100/img_001.png")


@dataclass(frozen=True)
class Figure:
    """One slice's result: its quality figure (dB), the reference it is measured beside, and its speed."""

    psnr: float
    bicubic: float
    seconds: float
    iterations: int
    off: float | None = None  # photo slices: the warm start alone (learning off), the same regions

    @property
    def learning_gain(self) -> float | None:
        return None if self.off is None else self.psnr - self.off


def _ideal(degradation: str, kernel: str | None) -> Callable[[Settings, Path, Path], Figure]:
    """A Set5 x2 slice: the CLI's engine config (the shipped one) on LR images made by `degradation`, with the
    kernel handed over ("given"), estimated from the LR ("estimated") or none (bicubic)."""

    def run(settings: Settings, data: Path, out: Path, _web_iterations: int = WEB_JOB_ITERATIONS) -> Figure:
        changes = {"scale_factor": 2.0, "scale_times": 1, "time_budget_s": None,
                   "iteration_budget": IDEAL_ITERATIONS}
        if kernel is not None:
            changes.update(ideal.kernel_settings(degradation, 2, out, kernel))
        config = settings.replace(**changes).engine
        rows = [ideal.run_image(data / "Set5" / f"{name}.png", 2, config, degradation) for name in SET5]
        return Figure(_mean(r["psnr"] for r in rows), _mean(r["bicubic_psnr"] for r in rows),
                      sum(r["seconds"] for r in rows), sum(r["iterations"] for r in rows))

    return run


def _photo(degradation: str) -> Callable[[Settings, Path, Path, int], Figure]:
    """A photo8x slice: the web job on each photo made 8x small by `degradation` (JPEG q85), its most detailed
    region, on WEB_JOB_ITERATIONS; and the same job with learning off (the warm starts alone)."""

    def run(settings: Settings, data: Path, out: Path, iterations: int = WEB_JOB_ITERATIONS) -> Figure:
        job = settings.replace(iteration_budget=iterations, job_time_budget_s=1e5)
        off = job.replace(iteration_budget=0)
        psnr, bicubic, learning_off, seconds, iterations = [], [], [], 0.0, 0
        for name in PHOTOS:
            hr = crop_to_multiple(np.asarray(Image.open(data / name).convert("RGB")), photo8x.SCALE)
            jpeg = photo8x.DEGRADATIONS[degradation](hr, 0)
            photo = photo8x.read_photo(jpeg, settings.service)
            region = photo8x.choose_regions(np.asarray(photo), 1)[0]
            truth = photo8x.hr_region(hr, region)
            sr, facts = photo8x.job_result(jpeg, region, job, 0)
            psnr.append(score(sr, truth, photo8x.SHAVE)["psnr"])
            learning_off.append(score(photo8x.job_result(jpeg, region, off, 0)[0], truth, photo8x.SHAVE)["psnr"])
            bicubic.append(score(photo8x.bicubic_region(photo, region, settings.service.context_px), truth,
                                 photo8x.SHAVE)["psnr"])
            seconds += facts["seconds"]
            iterations += facts["iterations"]
        return Figure(_mean(psnr), _mean(bicubic), seconds, iterations, _mean(learning_off))

    return run


def _web(settings: Settings, data: Path, out: Path, iterations: int = WEB_JOB_ITERATIONS) -> Figure:
    """One 8x job end to end through the app (upload, job runner, JSON, base64 PNG), on the bicubic-q85 photo's
    most detailed region, scored against the HR photo."""
    from app.web import close_app, create_app

    hr = crop_to_multiple(np.asarray(Image.open(data / PHOTOS[0]).convert("RGB")), photo8x.SCALE)
    jpeg = photo8x.DEGRADATIONS["bicubic-q85"](hr, 0)
    region = photo8x.choose_regions(np.asarray(photo8x.read_photo(jpeg, settings.service)), 1)[0]
    app = create_app(settings.replace(iteration_budget=iterations, job_time_budget_s=1e5, wait_s=600.0,
                                      rate_limit=None, max_jobs_per_client=0, api_keys=None, api_keys_file=None,
                                      job_backend="memory"))
    try:
        client = app.test_client()
        response = client.post("/upscale", data={
            "image": (io.BytesIO(jpeg), "photo.jpg"), "crop": str(region.width), "x": str(region.x),
            "y": str(region.y), "seed": "0", "format": "png"})
        if response.status_code != 200:
            raise SystemExit(f"gate: POST /upscale answered {response.status_code}: {response.get_data(True)[:300]}")
        body = response.get_json()
        bicubic = decode_rgb(client.get(body["bicubic"]).data)
    finally:
        close_app(app)
    if body["profile"]["name"] != "photo" or (body["crop"]["x"], body["crop"]["y"]) != (region.x, region.y):
        raise SystemExit(f"gate: the web job ran on {body['crop']} with profile {body['profile']}, not on "
                         f"{region} with the photo profile")
    sr = decode_rgb(base64.b64decode(body["image"]))
    truth = photo8x.hr_region(hr, region)
    return Figure(score(sr, truth, photo8x.SHAVE)["psnr"], score(bicubic, truth, photo8x.SHAVE)["psnr"],
                  body["seconds"], body["iterations"])


SLICES: dict[str, Callable[[Settings, Path, Path, int], Figure]] = {
    "lossless": _ideal("bicubic", None),
    "kernel_given": _ideal("gauss2.0", "given"),
    "kernel_estimated": _ideal("gauss2.0", "estimated"),
    "photo_bicubic_q85": _photo("bicubic-q85"),
    "photo_blur5_q85": _photo("blur5-q85"),
    "web_job": _web,
}


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def check(name: str, figure: Figure, floor: dict | None, tolerance: float) -> list[str]:
    """The ways `figure` falls below its floor (beyond `tolerance` dB), each naming the slice, figure and floor."""
    if floor is None:
        return [f"{name}: no floor recorded (run with --write-floors and commit the file)"]
    failures = []
    if figure.psnr < floor["psnr"] - tolerance:
        failures.append(f"{name}: PSNR {figure.psnr:.3f} dB is below its floor {floor['psnr']:.3f} dB "
                        f"(tolerance {tolerance} dB)")
    if figure.learning_gain is not None and figure.learning_gain < -tolerance:
        failures.append(f"{name}: learning gain (job - warm start alone) {figure.learning_gain:+.3f} dB is below 0 "
                        f"(tolerance {tolerance} dB)")
    return failures


def report(results: dict[str, Figure], floors: dict) -> list[str]:
    rows = []
    for name, figure in results.items():
        floor = floors["slices"].get(name) or {}
        rate = figure.iterations / figure.seconds if figure.seconds else 0.0
        recorded_rate = floor.get("iterations") / floor["seconds"] if floor.get("seconds") else None
        rows.append([name, f"{figure.psnr:.3f}", f"{floor['psnr']:.3f}" if "psnr" in floor else "-",
                     f"{figure.psnr - figure.bicubic:+.3f}",
                     "-" if figure.learning_gain is None else f"{figure.learning_gain:+.3f}",
                     f"{figure.seconds:.1f}", "-" if "seconds" not in floor else f"{floor['seconds']:.1f}",
                     f"{rate:.1f}", "-" if recorded_rate is None else f"{recorded_rate:.1f}"])
    return table(["slice", "PSNR dB", "floor dB", "vs bicubic", "learning gain", "seconds", "recorded s",
                  "it/s", "recorded it/s"], rows)


def write_floors(results: dict[str, Figure], floors: dict, lower: bool, machine: str) -> dict:
    """The floors raised to this run's figures (and lowered only with `lower`)."""
    updated = copy.deepcopy(floors)
    for name, figure in results.items():
        old = updated["slices"].get(name)
        psnr = round(figure.psnr, 3)
        if old is not None and psnr < old["psnr"] and not lower:
            raise SystemExit(f"gate: {name} measured {psnr:.3f} dB, below its floor {old['psnr']:.3f}; a floor is "
                             "never lowered silently (use --lower and say why in the commit)")
        updated["slices"][name] = {"psnr": psnr, "bicubic": round(figure.bicubic, 3),
                                   "seconds": round(figure.seconds, 1), "iterations": figure.iterations,
                                   **({} if figure.off is None else {"off": round(figure.off, 3)}),
                                   "measured": f"{time.strftime('%Y-%m-%d')}, {machine}"}
    return updated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.bench gate", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(SLICES), help="these slices only")
    parser.add_argument("--data", type=Path, default=DATA, help=f"the shared benchmark data (default {DATA})")
    parser.add_argument("--config", help="config.json path (default: the repository's)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config changes to try against the floors; profiles.NAME.KEY=VALUE changes a profile")
    parser.add_argument("--web-iterations", type=int, default=WEB_JOB_ITERATIONS,
                        help="the web job's budget as iterations (the photo and web slices; default: what the 10 s "
                             "job reaches on the reference machine)")
    parser.add_argument("--floors", type=Path, default=FLOORS)
    parser.add_argument("--write-floors", action="store_true", help="record this run's figures as the floors")
    parser.add_argument("--lower", action="store_true", help="with --write-floors: allow a floor to fall")
    parser.add_argument("--out", type=Path, default=Path("bench-results/gate"), help="scratch files (kernels)")
    args = parser.parse_args(argv)
    setup_logging()
    if not (args.data / "Set5").is_dir():
        parser.error(f"no benchmark data under {args.data} (give --data)")
    floors = json.loads(args.floors.read_text()) if args.floors.exists() else {"tolerance_db": 0.01, "slices": {}}
    settings = load_settings(args.config)
    settings = with_changes(settings, parse_overrides(args.set, parser))
    # The shipped config as CI's two cores run it: one thread per job, as the test suite does.
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Figure] = {}
    failures: list[str] = []
    for name in args.only or SLICES:
        started = time.monotonic()
        results[name] = figure = SLICES[name](settings, args.data, args.out, args.web_iterations)
        log.info("%s: %.3f dB (bicubic %.3f), %d iterations, %.1f s (%.1f s wall)", name, figure.psnr,
                 figure.bicubic, figure.iterations, figure.seconds, time.monotonic() - started)
        failures += check(name, figure, floors["slices"].get(name), floors["tolerance_db"])
    sys.stdout.write("\n".join(report(results, floors)) + "\n")
    if args.write_floors:
        from app.engine.device import describe, select_device

        machine = f"{describe(select_device(settings.engine.device))}, torch {torch.__version__}"
        args.floors.write_text(json.dumps(write_floors(results, floors, args.lower, machine), indent=2) + "\n")
        sys.stdout.write(f"floors written to {args.floors}\n")
        return 0
    for failure in failures:
        sys.stdout.write(f"FAIL {failure}\n")
    sys.stdout.write("gate: " + ("failed" if failures else f"passed ({len(results)} slices)") + "\n")
    return 1 if failures else 0
