"""What every benchmark protocol shares: MATLAB-bicubic downscaling, Y-PSNR/SSIM, overrides and report files."""

from __future__ import annotations

import argparse
import copy
import io
import json
import logging
import statistics
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from app.config import Settings, parse_value
from app.engine.image_io import to_uint8
from app.engine.metrics import psnr_y, ssim_y
from app.engine.resize import imresize
from app.errors import ConfigError


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float64 in [0, 1], the precision imresize is checked at."""
    return torch.from_numpy(image.transpose(2, 0, 1).astype(np.float64) / 255.0)[None]


def crop_to_multiple(image: np.ndarray, scale: int) -> np.ndarray:
    """The top-left crop of an (H, W, ...) array whose sides are multiples of `scale` (not a resize)."""
    return image[:image.shape[0] - image.shape[0] % scale, :image.shape[1] - image.shape[1] % scale]


def bicubic_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB imresize by 1/`scale` of an (H, W, 3) uint8 image whose sides are multiples of `scale`; uint8."""
    return to_uint8(imresize(to_tensor(hr), 1 / scale))


def decode_rgb(data: bytes) -> np.ndarray:
    """Image file bytes (PNG, JPEG) -> (H, W, 3) uint8 RGB."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def score(sr: np.ndarray, hr: np.ndarray, border: int) -> dict[str, float]:
    """PSNR and SSIM on Y of two uint8 images of one size, `border` pixels shaved on every side."""
    return {"psnr": psnr_y(sr, hr, border), "ssim": ssim_y(sr, hr, border)}


def mean_of(rows: Iterable[dict], key: str) -> float:
    return statistics.mean(r[key] for r in rows)


def median_of(rows: Iterable[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def parse_overrides(items: Sequence[str], parser: argparse.ArgumentParser) -> dict[str, Any]:
    """`--set KEY=VALUE ...` as a dict, values parsed as the CLI parses them; a malformed item is a usage error."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: expected KEY=VALUE")
        overrides[key] = parse_value(value)
    return overrides


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A markdown table's lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def write_report(out: Path, stem: str, report: dict, markdown: str) -> None:
    """`<stem>.json` and `<stem>.md` under `out`, rewritten whole (a long run can be read while it goes)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str))
    (out / f"{stem}.md").write_text(markdown)


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def with_changes(settings: Settings, changes: dict[str, Any]) -> Settings:
    """`settings` with flat changes (pinned over every profile) and profiles.NAME.KEY changes (that profile's)."""
    flat = {k: v for k, v in changes.items() if not k.startswith("profiles.")}
    profiles = copy.deepcopy(settings.engine.profiles)
    for key, value in changes.items():
        if key.startswith("profiles."):
            _, name, field = key.split(".", 2)
            if profiles is None or name not in profiles:
                raise ConfigError("profiles", f"no profile {name!r} in the config to change {key}")
            profiles[name][field] = value
    if profiles != settings.engine.profiles:
        settings = settings.replace(profiles=profiles)
    return settings.replace(**flat) if flat else settings
