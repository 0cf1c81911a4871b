"""The work of one job: learn from the whole photo, enlarge the crop, and encode both enlargements as PNG."""

from __future__ import annotations

import io
from typing import Callable

from PIL import Image

from app.engine import EngineConfig, bicubic_resize, super_resolve
from app.jobs.model import JobOutput, JobRequest, JobResult
from app.jobs.progress import ProgressTracker

# Fast PNG compression: the images are a few megapixels at most and go straight to a browser.
_PNG_LEVEL = 3


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=_PNG_LEVEL)
    return buffer.getvalue()


def run_zssr(request: JobRequest, config: EngineConfig, tracker: ProgressTracker,
             should_stop: Callable[[], bool]) -> JobOutput:
    """Enlarge the request's crop by config.total_scale; raises app.errors.Cancelled when stopped."""
    if request.seed is not None:
        config = config.replace(seed=request.seed)
    crop, train = request.crop_image, request.train_image
    result = super_resolve(crop, config, train_image=train, on_step=tracker.on_step,
                           on_phase=tracker.on_phase, should_stop=should_stop)
    scale = round(config.total_scale)
    bicubic = bicubic_resize(crop, config.total_scale)
    return JobOutput(
        result=JobResult(width=result.image.width, height=result.image.height, scale=scale, crop=request.crop,
                         photo_size=request.photo_size, learned_from_size=train.size,
                         seconds=result.seconds, iterations=result.iterations,
                         iterations_per_step=tuple(result.iterations_per_step), device=result.device,
                         budget_exhausted=result.budget_exhausted),
        sr_png=encode_png(result.image.convert("RGB")),
        bicubic_png=encode_png(bicubic.convert("RGB")),
    )
