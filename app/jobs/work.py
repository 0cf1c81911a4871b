"""The work of one job: learn from the whole photo, enlarge the crop, and encode both enlargements as PNG."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable

from app.engine import EngineConfig, bicubic_resize, super_resolve
from app.errors import BadImageError, Cancelled
from app.jobs.model import JobError, JobOutput, JobRequest, JobResult, JobState
from app.jobs.output import encode
from app.jobs.progress import ProgressTracker
from app.metrics import record_job

INTERNAL_FAILURE = "the enlargement failed on the server; please try again"

# What a backend runs for each job: run_zssr, or a stand-in in tests. The last argument says whether to stop.
Work = Callable[[JobRequest, EngineConfig, ProgressTracker, Callable[[], bool]], JobOutput]

def run_zssr(request: JobRequest, config: EngineConfig, tracker: ProgressTracker,
             should_stop: Callable[[], bool]) -> JobOutput:
    """Enlarge the request's crop by config.total_scale; raises app.errors.Cancelled when stopped.

    The crop is enlarged inside its context (the photo around it) and cut out of the result, so that the network
    sees across its edges; the bicubic comparison is made the same way."""
    config = config.replace(scale_times=request.steps)
    if request.seed is not None:
        config = config.replace(seed=request.seed)
    train = request.train_image
    result = super_resolve(request.crop_image, config, train_image=train, jpeg=request.jpeg,
                           on_step=tracker.on_step, on_phase=tracker.on_phase, should_stop=should_stop)
    scale = round(config.total_scale)
    crop = request.crop
    inside = crop.within(request.enlarged, scale)
    image = result.image.crop(inside)
    bicubic = bicubic_resize(request.crop_image, config.total_scale).crop(inside)
    return JobOutput(
        result=JobResult(width=image.width, height=image.height, scale=scale, crop=crop, context=request.context,
                         photo_size=request.photo_size, learned_from_size=train.size,
                         seconds=result.seconds, iterations=result.iterations,
                         iterations_per_step=tuple(result.iterations_per_step), device=result.device,
                         budget_exhausted=result.budget_exhausted,
                         weights=result.warm_start["weights"],
                         weights_chosen_by=result.warm_start["chosen_by"], learning=result.learning,
                         learning_share=result.learning_share, ensembled_steps=result.ensembled_steps,
                         network=result.networks[0] if result.networks else None,
                         later_weights=result.later_weights,
                         profile=None if result.profile is None else result.profile["name"],
                         profile_chosen_by=None if result.profile is None else result.profile["chosen_by"],
                         degradation=result.degradation, self_check=result.self_check,
                         fallback=result.fallback, format=request.output.format, name=request.name),
        sr_png=encode(image.convert("RGB"), request.output),
        # The comparison image: PNG, in the same colour profile (so both show alike), without the EXIF.
        bicubic_png=encode(bicubic.convert("RGB"), replace(request.output, format="png"), with_exif=False),
    )


def outcome_of(exc: Exception) -> tuple[JobState, JobError | None]:
    """How a job that raised `exc` ends: cancelled, or failed with words fit for the person who sent it."""
    if isinstance(exc, Cancelled):
        return JobState.CANCELLED, None
    if isinstance(exc, BadImageError):
        return JobState.FAILED, JobError("bad_image", str(exc))
    return JobState.FAILED, JobError("internal", INTERNAL_FAILURE)


def log_outcome(log: logging.Logger, job_id: str, state: JobState, output: JobOutput | None, seconds: float,
                wait_s: float | None = None) -> None:
    """The one log line of a finished job (what it made, from what, on which device, in how long), and its
    metrics (`wait_s`: how long it was queued)."""
    record_job(state.value, seconds, wait_s, output.result.iterations if output is not None else None)
    if output is None:
        log.info("job %s %s after %.1f s", job_id, state.value, seconds)
        return
    r = output.result
    log.info("job %s done: photo %dx%d, crop %dx%d, learned from %dx%d, scale %d, %d iterations%s, "
             "device %s, %.1f s", job_id, *r.photo_size, r.crop.width, r.crop.height, *r.learned_from_size,
             r.scale, r.iterations, " (budget spent)" if r.budget_exhausted else "", r.device, seconds)
