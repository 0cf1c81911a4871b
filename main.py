"""Command line: enlarge one image or a batch with ZSSR using config.json, any key overridable as --key value.

    python main.py --image in.jpg --output out.png --scale_factor 2 --scale_times 1
    python main.py photo1.jpg photo2.png folder/ --out-dir results/ --format webp --quality 85
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path

from app.batch import UsageError, expand_inputs, run_batch, run_one
from app.config import DEFAULT_PATH, ServiceConfig, load_settings, parse_value
from app.engine import EngineConfig
from app.engine.config import ENGINE_KEYS
from app.engine.presets import PRESETS, preset_config
from app.errors import ZSSRError
from app.jobs.output import DEFAULT_QUALITY, FORMATS
from app.logs import configure_logging

FORMAT_NAMES = {"png": "png", "webp": "webp", "jpeg": "jpeg", "jpg": "jpeg"}  # as the web API accepts them


def parse_quality(text: str) -> int:
    """An argparse type: an integer from 1 to 100."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"give an integer from 1 to 100, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="image files or folders (their .jpg .jpeg .png .webp .bmp .tif .tiff files); "
                             "in place of --image")
    parser.add_argument("--out-dir", help="folder for the outputs, named <stem>_x<total scale>.<format>; "
                                          "needed with several inputs or a folder")
    parser.add_argument("--format", type=lambda text: FORMAT_NAMES.get(text.lower(), text), choices=sorted(FORMATS),
                        help="output format (default png, or the --output path's extension)")
    parser.add_argument("--quality", type=parse_quality, default=DEFAULT_QUALITY,
                        help=f"webp and jpeg quality, 1..100 (default {DEFAULT_QUALITY})")
    parser.add_argument("--config", default=str(DEFAULT_PATH), help="flat JSON config file (default: config.json)")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="apply a named engine preset over the file")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--allow-large", action="store_true",
                        help="enlarge even beyond max_output_pixels (the sizes and the time estimate are still "
                             "logged first)")
    for cls in (EngineConfig, ServiceConfig):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            metavar = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
            parser.add_argument(f"--{f.name}", type=parse_value, default=argparse.SUPPRESS, metavar=metavar,
                                help=f.metadata["help"])
    return parser




def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_intermixed_args(argv))
    config_path, preset, quiet = args.pop("config"), args.pop("preset"), args.pop("quiet")
    allow_large = args.pop("allow_large")
    inputs, out_dir, fmt, quality = args.pop("inputs"), args.pop("out_dir"), args.pop("format"), args.pop("quality")
    try:
        if inputs and "image" in args:
            raise UsageError("give the input as arguments or as --image, not both")
        settings = load_settings(config_path)
        if preset:
            # The command line's engine keys go in with the preset (it may depend on the scale they give) and win.
            engine_args = {k: v for k, v in args.items() if k in ENGINE_KEYS}
            settings = settings.replace(**dataclasses.asdict(preset_config(preset, settings.engine, **engine_args)))
        settings = settings.replace(**args)
        engine, service = settings.engine, settings.service
        inputs = inputs or ([service.image] if service.image else [])
        if not inputs:
            raise UsageError("config key 'image': no input image given (use --image PATH or name files)")
        configure_logging(service.log_level)
        if out_dir is None and len(inputs) == 1 and not Path(inputs[0]).is_dir():
            return run_one(Path(inputs[0]), service, engine, fmt, quality, quiet, allow_large)
        if "output" in args:
            raise UsageError("--output names one file; with several inputs or a folder use --out-dir")
        if out_dir is None:
            raise UsageError("several inputs (or a folder) need --out-dir DIR for their outputs")
        sources = expand_inputs(inputs)
        if not sources:
            raise UsageError("no image files to enlarge")
        return run_batch(sources, Path(out_dir), service, engine, fmt or "png", quality, quiet, allow_large)
    except ZSSRError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
