"""The command line's work: each input file read, enlarged and written, one to a path or stdout, several to a
folder under a bar over the files (main.py parses the arguments and hands off here). Before any of it, the
outputs' sizes and the time this device will take are logged, and outputs beyond max_output_pixels refused."""

from __future__ import annotations

import base64
import io
import logging
import math
import os
import secrets
import sys
from pathlib import Path
from typing import NamedTuple

from PIL import ExifTags, Image
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from app.config import ServiceConfig
from app.engine import EngineConfig, SRResult, load_image, super_resolve
from app.engine.estimate import estimate, step_scales
from app.engine.profiles import choose_profile
from app.errors import ZSSRError
from app.jobs.output import FORMATS, save, with_profile, without_gps
from app.jpeg_profile import JpegProfile

log = logging.getLogger(__name__)

# What a folder given as input expands to (its files by extension; hidden files and subfolders are left out).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})


class UsageError(ZSSRError):
    """The command line asks for something contradictory or impossible (exit code 2, nothing enlarged)."""


class ProgressBar:
    """A tqdm bar per gradual step, fed by the engine's on_step callback."""

    def __init__(self, steps: int, total: int, disable: bool, leave: bool = True):
        self.steps, self.total, self.disable, self.leave = steps, total, disable, leave
        self.bar = None
        self.step = 0

    def __call__(self, step: int, iteration: int, loss: float, lr: float) -> None:
        if step != self.step:
            self.close()
            self.step = step
            self.bar = tqdm(total=self.total, desc=f"step {step}/{self.steps}", unit="it", disable=self.disable,
                            leave=self.leave, file=sys.stderr)
        self.bar.update(iteration - self.bar.n)
        self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.1e}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def expand_inputs(inputs: list[str]) -> list[Path]:
    """The inputs as given, each folder replaced by its image files (sorted, not recursive); a file named twice
    is kept once. A path that does not exist stays, to be reported when it cannot be read."""
    paths: dict[Path, Path] = {}
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file())
            if not found:
                sys.stderr.write(f"warning: {path} holds no image files\n")
        else:
            found = [path]
        for p in found:
            paths.setdefault(p.resolve(), p)
    return list(paths.values())


def output_paths(paths: list[Path], out_dir: Path, total_scale: float, fmt: str) -> list[Path]:
    """`<out_dir>/<stem>_x<total_scale>.<ext>` for each input; two inputs that would share one output are refused."""
    outputs: dict[Path, Path] = {}
    for path in paths:
        output = out_dir / f"{path.stem}_x{total_scale:g}.{FORMATS[fmt][2]}"
        if output in outputs:
            raise UsageError(f"{outputs[output]} and {path} would both be written to {output}")
        outputs[output] = path
    return list(outputs)


def pillow_format(output: str, fmt: str | None) -> str:
    """Pillow's format name for a single --output path: --format's, which the extension must match, else the
    extension's."""
    by_extension = Image.registered_extensions().get(Path(output).suffix.lower())
    if fmt is None:
        if by_extension is None:
            raise UsageError(f"unknown output image type: {output} (use .png, .webp or .jpg, or --format)")
        return by_extension
    if by_extension != FORMATS[fmt][0]:
        raise UsageError(f"--output {output} does not end in .{FORMATS[fmt][2]}, as --format {fmt} writes")
    return FORMATS[fmt][0]


def upright_size(source: Path) -> tuple[int, int] | None:
    """The image's width and height as it will be enlarged (after its EXIF orientation), from its header alone;
    None when it cannot be read (the error is reported when it is)."""
    try:
        with Image.open(source) as image:
            width, height = image.size
            orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def output_size(size: tuple[int, int], engine: EngineConfig) -> tuple[int, int]:
    """The enlargement's width and height: the last gradual step's scale over the input, rounded up."""
    sy, sx = step_scales(engine)[-1]
    return math.ceil(size[0] * sx - 1e-9), math.ceil(size[1] * sy - 1e-9)


def is_jpeg(source: Path) -> bool:
    """Whether `source` is read as a JPEG: its own tables make the sons and choose the photo profile."""
    return source.suffix.lower() in (".jpg", ".jpeg")


def input_config(source: Path, engine: EngineConfig) -> EngineConfig:
    """The settings `source` will run with, as far as its name tells: its input profile (a JPEG's is the photo
    one; the blur reader, which may turn it to the blurry photo's, which trains nothing, is not run here)."""
    choice = choose_profile(engine, jpeg=is_jpeg(source), blurry=lambda config: False)
    return engine if choice.name is None else engine.with_profile(choice.name)


def check_sizes(sources: list[Path], engine: EngineConfig, max_output_pixels: int | None) -> None:
    """Before any work: log each output's size and the time this device will take for them all, and refuse
    (UsageError) any output of more than `max_output_pixels` (None: no limit)."""
    inputs, too_large = [], []
    for source in sources:
        size = upright_size(source)
        if size is None:
            continue
        width, height = output_size(size, engine)
        log.info("%s: %dx%d -> %dx%d (%s pixels, x%g)", source, *size, width, height, f"{width * height:,}",
                 engine.total_scale)
        if max_output_pixels is not None and width * height > max_output_pixels:
            too_large.append(f"{source} would become {width}x{height} = {width * height:,} pixels")
        inputs.append((size, input_config(source, engine)))
    if too_large:
        raise UsageError(f"{'; '.join(too_large[:3])}{' and more' if len(too_large) > 3 else ''}: more than "
                         f"max_output_pixels ({max_output_pixels:,}). Raise it (--max_output_pixels N, up to "
                         "1000000000) or lift it (--allow-large) if this machine has the memory and the time, or "
                         "enlarge less (--scale_times) or a crop of the photo")
    if inputs:
        guess = estimate(inputs)
        log.info("estimated time on %s: about %s (training up to %s, enlarging %s)", guess.device,
                 _duration(guess.total_s), _duration(guess.training_s), _duration(guess.enlarging_s))


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under 1 s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Enlarged(NamedTuple):
    """An input as read (upright, CMYK in sRGB), its enlargement, and the photo's metadata that the output keeps."""

    image: Image.Image
    result: SRResult
    icc: bytes | None  # the profile the pixels are in
    exif: bytes | None  # as read (the encoder sets it upright and to the result's size)


def write_image(enlarged: Enlarged, path: Path, fmt: str, quality: int) -> None:
    """Write the enlargement to `path` through a temporary file in the same folder, renamed into place only when
    complete, so that a failed or interrupted write leaves neither a partial output nor the temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as file:  # "x": created with the umask's permissions, unlike mkstemp's 0600
            save(enlarged.result.image, file, fmt, quality, enlarged.icc, enlarged.exif)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def log_result(source: Path, target: str, engine: EngineConfig, enlarged: Enlarged) -> None:
    image, result = enlarged.image, enlarged.result
    log.info("%s (%dx%d) -> %s (%dx%d): x%g in %d steps, %d iterations %s, %.1f s on %s%s", source,
             image.width, image.height, target, result.image.width, result.image.height, engine.total_scale,
             len(engine.steps), result.iterations, list(result.iterations_per_step), result.seconds, result.device,
             " (time budget spent)" if result.budget_exhausted else "")
    if result.self_check is not None:
        check = result.self_check
        log.info("self-check: on the image's own details the network scores %.2f dB, bicubic %.2f dB (%+.2f)%s",
                 check["zssr_db"], check["bicubic_db"], check["zssr_db"] - check["bicubic_db"],
                 "; the network is not ahead, so the output is bicubic's" if result.fallback else "")


def enlarge(source: Path, engine: EngineConfig, progress: ProgressBar, keep_gps: bool) -> Enlarged:
    """Read `source` and enlarge it, keeping its colour profile and EXIF (its GPS position only with `keep_gps`)
    for the output."""
    try:
        photo = load_image(source)
        image, icc = with_profile(photo)
        # A JPEG's own tables make the training sons (sons_jpeg) and choose the photo prior (warm_start auto).
        jpeg = JpegProfile.read(source.read_bytes()) if is_jpeg(source) else None
        exif = photo.info.get("exif")
        return Enlarged(image, super_resolve(image, engine, jpeg=jpeg, on_step=progress), icc,
                        exif if keep_gps else without_gps(exif))
    finally:
        progress.close()


def run_one(source: Path, service: ServiceConfig, engine: EngineConfig, fmt: str | None, quality: int,
            quiet: bool, allow_large: bool = False) -> int:
    """One image to service.output, or to stdout as base64 (the original command line)."""
    if not service.output and not service.base64:
        raise UsageError("config key 'output': give an output path or set base64 true")
    pil_format = pillow_format(service.output, fmt) if service.output else FORMATS[fmt or "png"][0]
    check_sizes([source], engine, None if allow_large else service.max_output_pixels)
    try:
        enlarged = enlarge(source, engine, ProgressBar(len(engine.steps), engine.num_epochs, disable=quiet),
                           service.keep_gps)
        if service.output:
            write_image(enlarged, Path(service.output), pil_format, quality)
        else:
            buffer = io.BytesIO()
            save(enlarged.result.image, buffer, pil_format, quality, enlarged.icc, enlarged.exif)
            sys.stdout.write(base64.b64encode(buffer.getvalue()).decode("ascii") + "\n")
    except (ZSSRError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    log_result(source, service.output or "base64 on stdout", engine, enlarged)
    return 0


def run_batch(sources: list[Path], out_dir: Path, service: ServiceConfig, engine: EngineConfig, fmt: str,
              quality: int, quiet: bool, allow_large: bool = False) -> int:
    """Each source to out_dir, under a bar over the files; one that fails is reported and skipped."""
    outputs = output_paths(sources, out_dir, engine.total_scale, fmt)
    check_sizes(sources, engine, None if allow_large else service.max_output_pixels)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out-dir {out_dir}: {exc.strerror or exc}") from exc
    failed: list[Path] = []
    with logging_redirect_tqdm(), tqdm(total=len(sources), desc="images", unit="img", disable=quiet,
                                       file=sys.stderr) as bar:
        for source, output in zip(sources, outputs):
            bar.set_postfix_str(source.name)
            progress = ProgressBar(len(engine.steps), engine.num_epochs, disable=quiet, leave=False)
            try:
                enlarged = enlarge(source, engine, progress, service.keep_gps)
                write_image(enlarged, output, FORMATS[fmt][0], quality)
                log_result(source, str(output), engine, enlarged)
            except (ZSSRError, OSError) as exc:
                tqdm.write(f"error: skipped {source}: {exc}", file=sys.stderr)
                failed.append(source)
            bar.update()
    done = len(sources) - len(failed)
    summary = f"{done} of {len(sources)} image{'s' if len(sources) != 1 else ''} enlarged"
    if failed:
        summary += f"; {len(failed)} failed: {', '.join(map(str, failed))}"
    sys.stderr.write(summary + "\n")
    return 1 if failed else 0
