"""Command line: enlarge one image with ZSSR using config.json, any key overridable as --key value.

    python main.py --image in.jpg --output out.png --scale_factor 2 --scale_times 1
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import io
import logging
import sys
import typing

from app.config import DEFAULT_PATH, ServiceConfig, load_settings, parse_value
from app.engine import EngineConfig, load_image, save_image, super_resolve
from app.engine.presets import PRESETS, preset_config
from app.errors import ZSSRError
from app.logs import configure_logging

log = logging.getLogger("main")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(DEFAULT_PATH), help="flat JSON config file (default: config.json)")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="apply a named engine preset over the file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    for cls in (EngineConfig, ServiceConfig):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            parser.add_argument(f"--{f.name}", type=parse_value, default=argparse.SUPPRESS,
                                metavar=str(hints[f.name]).replace("typing.", ""), help=f.metadata["help"])
    return parser


class ProgressBar:
    """A tqdm bar per gradual step, fed by the engine's on_step callback."""

    def __init__(self, steps: int, total: int, disable: bool):
        self.steps, self.total, self.disable = steps, total, disable
        self.bar = None
        self.step = 0

    def __call__(self, step: int, iteration: int, loss: float, lr: float) -> None:
        from tqdm import tqdm

        if step != self.step:
            self.close()
            self.step = step
            self.bar = tqdm(total=self.total, desc=f"step {step}/{self.steps}", unit="it", disable=self.disable,
                            file=sys.stderr)
        self.bar.update(iteration - self.bar.n)
        self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.1e}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    config_path, preset, quiet = args.pop("config"), args.pop("preset"), args.pop("quiet")
    try:
        settings = load_settings(config_path)
        if preset:
            settings = settings.replace(**dataclasses.asdict(preset_config(preset, settings.engine)))
        settings = settings.replace(**args)
    except ZSSRError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    configure_logging(settings.service.log_level)
    engine, service = settings.engine, settings.service
    if not service.image:
        sys.stderr.write("error: config key 'image': no input image given (use --image PATH)\n")
        return 2
    if not service.output and not service.base64:
        sys.stderr.write("error: config key 'output': give an output path or set base64 true\n")
        return 2
    progress = ProgressBar(engine.scale_times, engine.num_epochs, disable=quiet)
    try:
        image = load_image(service.image)
        result = super_resolve(image, engine, on_step=progress)
        progress.close()
        if service.output:
            save_image(result.image, service.output)
        else:
            buffer = io.BytesIO()
            result.image.save(buffer, format="PNG")
            sys.stdout.write(base64.b64encode(buffer.getvalue()).decode("ascii") + "\n")
    except ZSSRError as exc:
        progress.close()
        sys.stderr.write(f"error: {exc}\n")
        return 1
    log.info("%s (%dx%d) -> %s (%dx%d): x%g in %d steps, %d iterations %s, %.1f s on %s%s", service.image,
             image.width, image.height, service.output or "base64 on stdout", result.image.width,
             result.image.height, engine.total_scale, engine.scale_times, result.iterations,
             list(result.iterations_per_step), result.seconds, result.device,
             " (time budget spent)" if result.budget_exhausted else "")
    if result.self_check is not None:
        check = result.self_check
        log.info("self-check: on the image's own details the network scores %.2f dB, bicubic %.2f dB (%+.2f)%s",
                 check["zssr_db"], check["bicubic_db"], check["zssr_db"] - check["bicubic_db"],
                 "; the network is not ahead, so the output is bicubic's" if result.fallback else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
