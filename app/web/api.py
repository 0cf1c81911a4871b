"""The JSON API: enlarge an upload (waiting a bounded time), jobs with progress and cancelling, health checks."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import re
import unicodedata
from pathlib import PurePosixPath
from typing import Any

from flask import Blueprint, Response, g, jsonify, request, url_for

from app.errors import (BackendUnavailableError, BadImageError, Cancelled, InvalidRequestError, JobFailedError,
                        UnknownJobError)
from app.jobs import Box, JobRequest, JobResult, JobState, JobStatus, Progress
from app.jobs.output import DEFAULT_QUALITY, OutputSpec, without_gps
from app.jpeg_profile import JpegProfile
from app.metrics import CONTENT_TYPE, LiveCollector, render
from app.web.access import client_id
from app.web.state import current
from app.web.uploads import choose_crop, read_photo

bp = Blueprint("api", __name__)

SEED_MAX = 2**32 - 1
# Names a client may give for an output format (jpg and jpeg are one).
FORMAT_NAMES = {"png": "png", "webp": "webp", "jpeg": "jpeg", "jpg": "jpeg"}
# Enlargements a job may ask for (gradual steps of 2x), and what it may enlarge.
SCALES = {"2": 2, "4": 4, "8": 8}
DEFAULT_SCALE = 8
REGIONS = {"crop": "crop", "whole": "whole"}


@bp.post("/upscale")
def upscale():
    """Enlarge and answer 200 with the result, or 202 with the job's place when it takes longer than wait_s (at
    once with `Prefer: respond-async`, RFC 7240)."""
    state = current()
    status = state.backend.submit(_job_request())
    if _prefers_async():
        response = _accepted(status)
        response.headers["Preference-Applied"] = "respond-async"
        return response
    status = state.backend.wait(status.id, state.settings.service.wait_s)
    if status.state is JobState.DONE:
        body = {"id": status.id, **_result_json(status, inline=state.settings.service.base64)}
        return jsonify(body)
    if status.state is JobState.FAILED:
        error_class = BadImageError if status.error.code == "bad_image" else JobFailedError
        raise error_class(status.error.message)
    if status.state is JobState.CANCELLED:
        raise Cancelled("the job was cancelled before it finished")
    return _accepted(status)


@bp.post("/api/jobs")
def create_job():
    return _accepted(current().backend.submit(_job_request()))


@bp.get("/api/jobs/<job_id>")
def get_job(job_id: str):
    return jsonify(_job_json(current().backend.status(job_id)))


@bp.delete("/api/jobs/<job_id>")
def cancel_job(job_id: str):
    """Cancel: a queued job at once (200), a running one at its next training iteration (202)."""
    status = current().backend.cancel(job_id)
    return jsonify(_job_json(status)), 202 if status.state is JobState.RUNNING else 200


@bp.get("/api/jobs/<job_id>/result.png", defaults={"fmt": "png"})
@bp.get("/api/jobs/<job_id>/result.webp", defaults={"fmt": "webp"})
@bp.get("/api/jobs/<job_id>/result.jpg", defaults={"fmt": "jpeg"})
def result_image(job_id: str, fmt: str):
    output = current().backend.output(job_id)
    result = output.result
    if result.format != fmt:
        spec = OutputSpec(result.format)
        raise UnknownJobError(f"this job's result is {spec.extension.upper()}: "
                              f"{url_for('api.result_image', job_id=job_id, fmt=result.format)}")
    spec = OutputSpec(fmt)
    return _image(output.sr_png, spec.mimetype, f"{_file_stem(result)}.{spec.extension}")


@bp.get("/api/jobs/<job_id>/bicubic.png")
def bicubic_png(job_id: str):
    output = current().backend.output(job_id)
    return _image(output.bicubic_png, "image/png", f"{_file_stem(output.result)}-bicubic.png")


@bp.get("/healthz")
def healthz():
    """Alive: the process answers. Says nothing about the workers (see /readyz)."""
    return jsonify(status="ok")


@bp.get("/metrics")
def metrics():
    """Prometheus exposition: jobs by outcome, job and queue-wait times, training speed, refused requests, and,
    read now, the queue's depth, the workers and the device."""
    return Response(render(LiveCollector(current().backend.health)), mimetype=CONTENT_TYPE)


@bp.get("/readyz")
def readyz():
    """Ready: the job workers are alive and the device they run on is known."""
    health = current().backend.health()
    if not health.alive:
        raise BackendUnavailableError(f"the job runner is not running ({health.detail})")
    return jsonify(status="ready", device=health.device, workers=health.workers, queued=health.queued,
                   running=health.running)


def _job_request() -> JobRequest:
    service = current().settings.service
    upload = request.files.get("image")
    if upload is None:
        raise InvalidRequestError("no file: send the photo as multipart/form-data field \"image\"")
    data = upload.stream.read()
    photo = read_photo(data, service)
    seed = _int_field("seed", 0, SEED_MAX)
    scale = _choice_field("scale", SCALES, DEFAULT_SCALE)
    if _choice_field("region", REGIONS, "crop") == "whole":
        if any(request.form.get(name, "").strip() for name in ("x", "y", "crop")):
            raise InvalidRequestError("x, y and crop choose a region; leave them out with region=whole")
        box = Box(0, 0, *photo.size)
    else:
        crop = _int_field("crop", service.min_side, max(*service.crop_sizes, service.default_crop))
        box = choose_crop(photo, crop if crop is not None else service.default_crop,
                          _int_field("x", 0, None), _int_field("y", 0, None), seed)
    _check_output_size(box, scale, service.max_output_pixels)
    output = OutputSpec(_choice_field("format", FORMAT_NAMES, "png"), _int_field("quality", 1, 100) or DEFAULT_QUALITY)
    job = JobRequest.from_photo(photo, box, service.train_max_side, seed, g.request_id, JpegProfile.read(data),
                                client_id(), output, _upload_name(upload.filename), scale, service.context_px)
    if service.keep_gps:
        return job
    return dataclasses.replace(job, output=dataclasses.replace(job.output, exif=without_gps(job.output.exif)))


def _check_output_size(box: Box, scale: int, limit: int) -> None:
    """Refuse an enlargement larger than max_output_pixels, naming the largest scale that would fit."""
    if box.width * box.height * scale * scale <= limit:
        return
    fits = [s for s in sorted(set(SCALES.values()), reverse=True) if box.width * box.height * s * s <= limit]
    what = f"{box.width}x{box.height} at {scale}x would be {box.width * scale}x{box.height * scale} pixels"
    advice = (f"the largest scale that fits is {fits[0]}x" if fits
              else "no scale fits; choose a region instead (region=crop)")
    raise InvalidRequestError(f"{what}, more than the {limit:,} allowed; {advice}")


def _choice_field(name: str, choices: dict[str, Any], default: Any) -> Any:
    text = request.form.get(name, "").strip().lower()
    if not text:
        return default
    if text not in choices:
        raise InvalidRequestError(f"{name} must be one of {', '.join(choices)}; "
                                  f"got {text[:20]!r}")
    return choices[text]


def _prefers_async() -> bool:
    preferences = ",".join(request.headers.getlist("Prefer")).split(",")
    return any(p.split(";", 1)[0].strip().lower() == "respond-async" for p in preferences)


def _int_field(name: str, lo: int, hi: int | None) -> int | None:
    text = request.form.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise InvalidRequestError(f"{name} must be a whole number; got {text[:20]!r}") from None
    if value < lo or (hi is not None and value > hi):
        raise InvalidRequestError(f"{name} must be between {lo} and {hi}; got {value}" if hi is not None
                                  else f"{name} must be at least {lo}; got {value}")
    return value


def _accepted(status: JobStatus):
    response = jsonify(_job_json(status))
    response.status_code = 202
    response.headers["Location"] = url_for("api.get_job", job_id=status.id)
    return response


def _image(data: bytes, mimetype: str, filename: str) -> Response:
    disposition = "attachment" if request.args.get("download") else "inline"
    return Response(data, mimetype=mimetype,
                    headers={"Content-Disposition": f'{disposition}; filename="{filename}"',
                             "Cache-Control": "private, max-age=600"})


def _file_stem(result: JobResult) -> str:
    """What a result's files are called: the photo's name, the region and the scale (holiday-x40-y12-64x64-8x)."""
    crop = result.crop
    return f"{result.name}-x{crop.x}-y{crop.y}-{crop.width}x{crop.height}-{result.scale}x"


def _upload_name(filename: str | None) -> str:
    """The upload's file name without folders or extension, in safe characters (for Content-Disposition)."""
    stem = PurePosixPath((filename or "").replace("\\", "/")).stem
    stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")  # Été -> Ete
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:60]
    return stem or "photo"


def _job_json(status: JobStatus) -> dict:
    return {
        "id": status.id,
        "status": status.state.value,
        "queue_position": status.queue_position,
        "cancel_requested": status.cancel_requested,
        "progress": _progress_json(status.progress),
        "photo": {"width": status.photo_size[0], "height": status.photo_size[1]},
        "crop": _box_json(status.crop),
        "created_at": _iso(status.created_at),
        "started_at": _iso(status.started_at),
        "finished_at": _iso(status.finished_at),
        "result": _result_json(status, inline=False) if status.result is not None else None,
        "error": {"error": status.error.code, "message": status.error.message} if status.error else None,
        "links": {"self": url_for("api.get_job", job_id=status.id)},
    }


def _result_json(status: JobStatus, *, inline: bool) -> dict:
    """What was made: the enlarged crop (a URL, or base64 PNG when `inline`), and what it was learned from."""
    result: JobResult = status.result
    image = (base64.b64encode(current().backend.output(status.id).sr_png).decode("ascii") if inline
             else url_for("api.result_image", job_id=status.id, fmt=result.format))
    return {
        "image": image,
        "image_encoding": "base64" if inline else "url",
        "format": result.format,
        "url": url_for("api.result_image", job_id=status.id, fmt=result.format),
        "bicubic": url_for("api.bicubic_png", job_id=status.id),
        "width": result.width,
        "height": result.height,
        "scale": result.scale,
        "crop": _box_json(result.crop),
        "seconds": round(result.seconds, 3),
        "iterations": result.iterations,
        "iterations_per_step": list(result.iterations_per_step),
        "budget_exhausted": result.budget_exhausted,
        "device": result.device,
        "photo": {"width": result.photo_size[0], "height": result.photo_size[1]},
        "learned_from": {"what": "the whole photo", "width": result.learned_from_size[0],
                         "height": result.learned_from_size[1]},
        "enlarged": {"what": "the whole photo" if (result.crop.x, result.crop.y, result.crop.width,
                                                    result.crop.height) == (0, 0, *result.photo_size) else "the crop",
                     "width": result.crop.width, "height": result.crop.height,
                     "context": None if result.context is None else _box_json(result.context)},
        "weights": result.weights,
        "later_weights": result.later_weights,
        "weights_chosen_by": result.weights_chosen_by,
        "profile": {"name": result.profile, "chosen_by": result.profile_chosen_by},
        "network": result.network,
        "learning": None if result.learning is None else list(result.learning),
        "learning_share": result.learning_share,
        "ensembled_steps": result.ensembled_steps,
        "degradation": result.degradation,
        "self_check": result.self_check,
        "fallback": result.fallback,
    }


def _progress_json(progress: Progress) -> dict:
    return {
        "step": progress.step,
        "steps": progress.steps,
        "phase": progress.phase,
        "iteration": progress.iteration,
        "iterations": progress.iterations,
        "loss": progress.loss,
        "fraction": round(progress.fraction, 4),
        "elapsed_s": round(progress.elapsed_s, 2),
        "eta_s": None if progress.eta_s is None else round(progress.eta_s, 1),
    }


def _box_json(box: Box) -> dict:
    return {"x": box.x, "y": box.y, "width": box.width, "height": box.height}


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat(timespec="milliseconds")
