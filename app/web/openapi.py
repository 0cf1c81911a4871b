"""The API's machine-readable description: an OpenAPI 3.1 document of every JSON endpoint, served at /openapi.json."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from app.jobs.backend import SCALE_FACTOR, SCALE_TIMES
from app.web.api import SEED_MAX

bp = Blueprint("openapi", __name__)

VERSION = "1.0.0"
SCALE = round(SCALE_FACTOR ** SCALE_TIMES)

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema, description: str | None = None) -> Schema:
    nullable: Schema = {"oneOf": [schema, {"type": "null"}]}
    if description:
        nullable["description"] = description
    return nullable


def _strict(properties: dict[str, Schema], description: str | None = None) -> Schema:
    """An object the service fully controls: every property always present, nothing else, so that a renamed or
    dropped field breaks validation instead of slipping through."""
    schema: Schema = {"type": "object"}
    if description:
        schema["description"] = description
    schema.update(required=list(properties), properties=properties, additionalProperties=False)
    return schema


def _count(description: str | None = None, minimum: int = 0) -> Schema:
    schema: Schema = {"type": "integer", "minimum": minimum}
    if description:
        schema["description"] = description
    return schema


def _size(description: str, *what: str) -> Schema:
    properties: dict[str, Schema] = {}
    if what:
        properties["what"] = {"type": "string", "enum": list(what)}
    properties.update(width=_count(minimum=1), height=_count(minimum=1))
    return _strict(properties, description)


def _enlarged() -> Schema:
    schema = _size("the region that was enlarged", "the crop", "the whole photo")
    schema["properties"]["context"] = _nullable(_ref("Box"), "the part of the photo enlarged with the crop, whose "
                                                             "pixels around it (context_px) the network saw across "
                                                             "the crop's edges, then cut away; null: the crop alone")
    schema["required"] = list(schema["properties"])
    return schema


def _result_properties() -> dict[str, Schema]:
    """The fields of a done job's result (app.web.api._result_json), shared by /upscale and the job JSON."""
    return {
        "image": {"type": "string", "description": "the enlarged crop: base64 PNG (image_encoding base64) or the "
                                                  "URL of result.png (image_encoding url)"},
        "image_encoding": {"type": "string", "enum": ["base64", "url"]},
        "format": {"type": "string", "enum": ["png", "webp", "jpeg"], "description": "of the enlargement"},
        "url": {"type": "string", "format": "uri-reference", "description": "where the enlargement is "
                                                                            "(result.png, .webp or .jpg)"},
        "bicubic": {"type": "string", "format": "uri-reference",
                    "description": "bicubic.png: the same crop enlarged bicubically, to compare"},
        "width": _count("of the enlarged image", 1),
        "height": _count("of the enlarged image", 1),
        "scale": {"type": "integer", "enum": [2, 4, 8]},
        "crop": _ref("Box"),
        "seconds": {"type": "number", "minimum": 0},
        "iterations": _count("training iterations, all gradual steps together"),
        "iterations_per_step": {"type": "array", "items": _count(), "minItems": 1},
        "budget_exhausted": {"type": "boolean", "description": "training stopped because the job's time budget "
                                                               "was spent"},
        "device": {"type": "string", "examples": ["cpu", "cuda:0 (NVIDIA H100)"]},
        "photo": _ref("Size"),
        "learned_from": _size("the whole photo as the network saw it (downscaled for training)", "the whole photo"),
        "enlarged": _enlarged(),
        "weights": {"type": ["string", "null"], "description": "the warm-start file the network started from; "
                                                              "null: from scratch"},
        "later_weights": {"type": ["string", "null"], "description": "the file the gradual steps after the first "
                                                                    "started again from (their input is the "
                                                                    "network's own clean output); null: each step "
                                                                    "went on from the previous one"},
        "weights_chosen_by": {"type": ["string", "null"],
                              "description": "why those weights: the config named them, or (warm_start auto) the "
                                             "input chose: a JPEG starts from the photo weights (one the blur "
                                             "reader finds blurry from the blurry-photo weights, where set), a "
                                             "lossless image or a given kernel from the clean ones",
                              "examples": ["a JPEG input", "a blurry JPEG input", "a lossless input", "the config"]},
        "profile": {"type": "object", "required": ["name", "chosen_by"], "additionalProperties": False,
                    "description": "the input profile the job ran with: the named set of engine settings for its "
                                   "kind of input (config.json's profiles), chosen by the input or forced by the "
                                   "config's profile key",
                    "properties": {
                        "name": {"type": ["string", "null"],
                                 "enum": ["photo", "blurry_photo", "lossless", "kernel_given", "kernel_estimated",
                                          None],
                                 "description": "the profile; null: the config has no profiles"},
                        "chosen_by": {"type": "string", "description": "why that profile",
                                      "examples": ["a JPEG input", "a blurry JPEG input", "the config"]}}},
        "network": {"type": ["string", "null"],
                    "description": "the first step's network (a weights file is built into the design it was "
                                   "trained as): its layers and width, and whether they work on every pixel of the "
                                   "enlarged input (the paper's) or on 2x2 blocks with a sub-pixel output",
                    "examples": ["8 layers of 64, on every pixel", "12 layers of 96, on 2x2 blocks, sub-pixel output"]},
        "learning": {"type": ["array", "null"], "items": _ref("Learning"),
                     "description": "per gradual step that trained: how well the network rebuilt a strip of the "
                                    "photo held out of training, with the step's learning and with the weights it "
                                    "started from; the learning is kept only where it is ahead. null: no check ran "
                                    "(learning_check off, or the photo too small to hold a strip out)"},
        "learning_share": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                           "description": "the share of each gradual step's test-time learning kept: its weights "
                                          "end that far from the weights it started from towards what it "
                                          "learned (learning_share; 1: all of it)"},
        "ensembled_steps": {"type": "integer", "minimum": 0,
                            "description": "how many gradual steps, from the first, enlarged as the median over "
                                           "the 8 rotations and flips of their input (self_ensemble, "
                                           "ensemble_steps); 0: each step enlarged once (or the image is "
                                           "bicubic's)"},
        "degradation": _nullable(_ref("Degradation")),
        "self_check": _nullable(_ref("SelfCheck"), "measured after the first gradual step's training; null when "
                                                   "training stopped before it"),
        "fallback": {"type": "boolean", "description": "the network did not beat bicubic on the photo's own "
                                                        "details, so the image is bicubic's"},
    }


ERROR_CODE = {"type": "string", "pattern": "^[a-z_]+$"}

SCHEMAS: dict[str, Schema] = {
    "Error": _strict({"error": ERROR_CODE, "message": {"type": "string", "minLength": 1}},
                     "Every error, on every path: a stable code for programs and a sentence for people."),
    "Box": _strict({"x": _count(), "y": _count(), "width": _count(minimum=1), "height": _count(minimum=1)},
                   "A rectangle in photo pixels (after EXIF orientation); x, y is its top-left corner."),
    "Size": _size("A photo's size in pixels (after EXIF orientation)."),
    "JpegProfile": _strict({"quality": {"type": "integer", "minimum": 1, "maximum": 100},
                            "subsampling": {"type": "string", "enum": ["4:4:4", "4:2:2", "4:2:0", "grayscale"]}},
                           "How the upload was compressed (the training examples are compressed the same way)."),
    "BicubicKernel": _strict({"kind": {"type": "string", "const": "bicubic"}}, "MATLAB's bicubic."),
    "GaussianKernel": _strict({"kind": {"type": "string", "const": "gaussian"},
                               "sigma": {"type": "number", "exclusiveMinimum": 0}, "size": _count(minimum=1)},
                              "An isotropic Gaussian, estimated from the photo."),
    "Learning": _strict({"step": _count(minimum=1), "adapted_db": {"type": "number"},
                         "warm_start_db": {"type": "number"}, "gain_db": {"type": "number"},
                         "kept": {"type": "boolean"}},
                        "One gradual step's test-time learning judged on a strip of the photo held out of training "
                        "(PSNR, dB): kept only where it rebuilds the strip better than the weights it started from."),
    "SelfCheck": _strict({"zssr_db": {"type": "number"}, "bicubic_db": {"type": "number"}},
                         "How close the trained network, and bicubic, rebuild the photo from its own smaller copy "
                         "(PSNR, dB): the photo's own test of what was learned."),
    "Degradation": _strict({
        "noise_std": {"type": "number", "minimum": 0},
        "noise_estimated": {"type": "boolean", "description": "noise_std was measured on the photo (else set)"},
        "jpeg": _nullable(_ref("JpegProfile")),
        "kernel": _nullable({"oneOf": [_ref("BicubicKernel"), _ref("GaussianKernel")]},
                            "the son kernel estimated from the photo; null: the configured one"),
        "blur_std": {"type": ["number", "null"], "minimum": 0,
                     "description": "the photo's blur as the learned reader reads it (a Gaussian's std, px at x2); "
                                    "null: not read (blurry_photo_std off, or a kernel given or estimated)"},
        "blurry": {"type": "boolean", "description": "blur_std reached blurry_photo_std: the photo learned "
                                                     "nothing at test time and was not self-checked"},
    }, "What the training examples (LR sons) went through, and what was read from the photo to decide it."),
    "Progress": _strict({
        "step": _count("gradual step, 1 to steps; 0 before training starts"),
        "steps": _count(),
        "phase": {"type": ["string", "null"], "enum": ["training", "enlarging", None]},
        "iteration": _count("within the current step"),
        "iterations": _count("over all steps so far"),
        "loss": {"type": ["number", "null"]},
        "fraction": {"type": "number", "minimum": 0, "maximum": 1, "description": "an estimate; 1 only when done"},
        "elapsed_s": {"type": "number", "minimum": 0},
        "eta_s": {"type": ["number", "null"], "minimum": 0, "description": "seconds left, an estimate; null while "
                                                                          "unknown"},
    }, "How far a job is."),
    "Result": _strict(_result_properties(), "What a done job made (its image always as a URL)."),
    "UpscaleResult": _strict({"id": {"type": "string", "pattern": "^[0-9a-f]{32}$"}, **_result_properties()},
                             "POST /upscale's answer when the job finished in time: its id and its result."),
    "Job": _strict({
        "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "status": {"type": "string", "enum": ["queued", "running", "done", "failed", "cancelled"]},
        "queue_position": {"type": ["integer", "null"], "minimum": 0,
                           "description": "1: next to run; 0: running; null: finished"},
        "cancel_requested": {"type": "boolean"},
        "progress": _ref("Progress"),
        "photo": _ref("Size"),
        "crop": _ref("Box"),
        "created_at": {"type": "string", "format": "date-time"},
        "started_at": {"type": ["string", "null"], "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "result": _nullable(_ref("Result")),
        "error": _nullable(_ref("Error"), "why a failed job failed (codes such as bad_image, internal, timeout, "
                                          "worker_lost)"),
        "links": _strict({"self": {"type": "string", "format": "uri-reference"}}),
    }, "A job's snapshot."),
    "Health": _strict({"status": {"type": "string", "const": "ok"}}),
    "Ready": _strict({"status": {"type": "string", "const": "ready"}, "device": {"type": "string"},
                      "workers": _count(), "queued": _count(), "running": _count()}),
    "Upload": {
        "type": "object",
        "required": ["image"],
        "properties": {
            "image": {"contentMediaType": "image/jpeg", "description": "the photo (a JPEG)"},
            "seed": {"type": "integer", "minimum": 0, "maximum": SEED_MAX,
                     "description": "decides the random region (when x and y are not given) and the training"},
            "x": {"type": "integer", "minimum": 0, "description": "the region's left edge; give both x and y, or "
                                                                 "neither for a detailed region at random"},
            "y": {"type": "integer", "minimum": 0, "description": "the region's top edge"},
            "crop": {"type": "integer", "minimum": 1, "description": "the region's side in pixels (shrunk to the "
                                                                    "photo); the service's default when absent"},
            "scale": {"type": "integer", "enum": [2, 4, 8], "description": "the enlargement (default 8): gradual "
                                                                        "steps of 2x"},
            "region": {"type": "string", "enum": ["crop", "whole"],
                       "description": "crop (default): a region of `crop` pixels at x, y or at random; whole: the "
                                      "whole photo (then leave x, y and crop out); the output may have at most "
                                      "max_output_pixels"},
            "format": {"type": "string", "enum": ["png", "webp", "jpeg", "jpg"],
                       "description": "the enlargement's file format (default png); the photo's ICC profile and "
                                      "EXIF are carried into it"},
            "quality": {"type": "integer", "minimum": 1, "maximum": 100,
                        "description": "webp and jpeg quality (default 90)"},
        },
    },
}

RETRY_AFTER = {"description": "seconds to wait before trying again", "schema": {"type": "integer", "minimum": 0}}

HEADERS: dict[str, Schema] = {
    "X-Request-ID": {"description": "the request's id, on its log lines too (the client's own X-Request-ID when "
                                    "short and plain)", "schema": {"type": "string"}},
    "Location": {"description": "the job's URL, to poll", "required": True,
                 "schema": {"type": "string", "format": "uri-reference"}},
    "Retry-After": RETRY_AFTER,
    "Retry-After-Required": {**RETRY_AFTER, "required": True},
}


def _header(name: str) -> Schema:
    return {"$ref": f"#/components/headers/{name}"}


def _answer(description: str, content: dict[str, Schema] | None = None, **headers: Schema) -> Schema:
    """A response; every one carries the request's id."""
    response: Schema = {"description": description,
                        "headers": {"X-Request-ID": _header("X-Request-ID"), **headers}}
    if content is not None:
        response["content"] = content
    return response


def _json(description: str, schema: Schema, **headers: Schema) -> Schema:
    return _answer(description, {"application/json": {"schema": schema}}, **headers)


def _error(description: str, codes: list[str], **headers: Schema) -> Schema:
    """An error answer whose `error` is one of `codes`."""
    return _json(description, {"allOf": [_ref("Error"), {"properties": {"error": {"enum": codes}}}]}, **headers)


# By status; each operation names those it can give (see _responses).
ERRORS: dict[str, tuple[str, Schema]] = {
    "BadRequest": ("400", _error("A field is missing or malformed, or the photo is corrupt or too small.",
                                 ["bad_request", "bad_image", "too_small"])),
    "Unauthorized": ("401", _error("API keys are configured and the request has none (Authorization: Bearer KEY); "
                                   "the upload page's session opens only the page's own jobs.", ["unauthorized"],
                                   **{"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}})),
    "Forbidden": ("403", _error("The API key given is not one of the configured keys.", ["forbidden"])),
    "NotFound": ("404", _error("No such job (unknown, or its result has expired; for the upload page's session, "
                               "not one it submitted).", ["not_found"])),
    "Conflict": ("409", _error("The job cannot do that in its present state (no result yet, already finished), or "
                               "it was cancelled.", ["conflict", "cancelled"])),
    "TooLarge": ("413", _error("The upload has more bytes (max_MB) or more pixels (max_pixels) than accepted.",
                               ["too_large"])),
    "NotJpeg": ("415", _error("The upload is not a JPEG by its content.", ["not_jpeg"])),
    "TooManyRequests": ("429", _error("This client submitted more jobs per minute than allowed (rate_limited), or "
                                      "has too many jobs queued or running (too_many_jobs).",
                                      ["rate_limited", "too_many_jobs"],
                                      **{"Retry-After": _header("Retry-After-Required")})),
    "Internal": ("500", _error("Something went wrong on the server (no details are given).", ["internal"])),
    "Unavailable": ("503", _error("The queue is full (queue_full), or the job runner or its Redis cannot be "
                                  "reached (unavailable).", ["queue_full", "unavailable"],
                                  **{"Retry-After": _header("Retry-After")})),
}

RESPONSES: dict[str, Schema] = {
    "Accepted": _json("The job is queued or running; poll its Location.", _ref("Job"), Location=_header("Location")),
    **{name: response for name, (_, response) in ERRORS.items()},
}


def _responses(ok: dict[str, Schema], *errors: str) -> dict[str, Schema]:
    """The operation's own answers, the named error answers, and the 500 that every path can give."""
    answers = dict(ok)
    for name in (*errors, "Internal"):
        answers[ERRORS[name][0]] = {"$ref": f"#/components/responses/{name}"}
    return answers


# Every submission and job call can be refused for want of a key, or by a backend that is away.
API_ERRORS = ("Unauthorized", "Forbidden", "Unavailable")
SUBMIT_ERRORS = ("BadRequest", *API_ERRORS, "TooLarge", "NotJpeg", "TooManyRequests")
UPLOAD_BODY = {"required": True, "content": {"multipart/form-data": {
    "schema": _ref("Upload"), "encoding": {"image": {"contentType": "image/jpeg"}}}}}
JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
DOWNLOAD = {"name": "download", "in": "query", "required": False, "schema": {"type": "string"},
            "description": "any value: answer as an attachment (a file to save) instead of inline"}


def _image(description: str, mimetype: str = "image/png") -> dict[str, Schema]:
    return {"200": _answer(description, {mimetype: {"schema": {"contentMediaType": mimetype}}},
                           **{"Content-Disposition": {"description": "inline, or attachment with ?download=1; the "
                                                                     "file is named after the photo, the region "
                                                                     "and the scale",
                                                      "schema": {"type": "string"}}})}


PATHS: dict[str, Schema] = {
    "/upscale": {"post": {
        "operationId": "upscale",
        "summary": f"Enlarge a region of a photo, or the whole photo, 2x to 8x (default {SCALE}x), waiting up "
                   "to wait_s",
        "description": "Answers 200 with the result when the job finishes within the service's wait_s, else 202 "
                       "with the job and its Location. `Prefer: respond-async` asks for the 202 at once.",
        "parameters": [{"name": "Prefer", "in": "header", "required": False, "schema": {"type": "string"},
                        "examples": {"async": {"value": "respond-async"}}}],
        "requestBody": UPLOAD_BODY,
        "responses": _responses({"200": _json("The enlargement.", _ref("UpscaleResult")),
                                 "202": {"$ref": "#/components/responses/Accepted"}},
                                *SUBMIT_ERRORS, "Conflict"),
    }},
    "/api/jobs": {"post": {
        "operationId": "createJob",
        "summary": "Queue an enlargement and answer at once",
        "requestBody": UPLOAD_BODY,
        "responses": _responses({"202": {"$ref": "#/components/responses/Accepted"}}, *SUBMIT_ERRORS),
    }},
    "/api/jobs/{job_id}": {
        "parameters": [JOB_ID],
        "get": {"operationId": "getJob", "summary": "A job's status, progress and result",
                "responses": _responses({"200": _json("The job.", _ref("Job"))}, *API_ERRORS, "NotFound")},
        "delete": {"operationId": "cancelJob",
                   "summary": "Cancel a job: a queued one at once (200), a running one at its next iteration (202)",
                   "responses": _responses({"200": _json("Cancelled (or already cancelled).", _ref("Job")),
                                            "202": _json("Cancel requested; the job stops at its next training "
                                                         "iteration.", _ref("Job"))},
                                           *API_ERRORS, "NotFound", "Conflict")},
    },
    **{f"/api/jobs/{{job_id}}/result.{ext}": {"parameters": [JOB_ID, DOWNLOAD], "get": {
        "operationId": f"getResult{ext.capitalize()}",
        "summary": f"A done job's enlargement, when it was asked for as {name} (404 names the right URL otherwise)",
        "responses": _responses(_image("The enlarged crop, with the photo's ICC profile and EXIF.", mime),
                                *API_ERRORS, "NotFound", "Conflict"),
    }} for name, ext, mime in (("png", "png", "image/png"), ("webp", "webp", "image/webp"),
                               ("jpeg", "jpg", "image/jpeg"))},
    "/api/jobs/{job_id}/bicubic.png": {"parameters": [JOB_ID, DOWNLOAD], "get": {
        "operationId": "getBicubicPng", "summary": "A done job's crop enlarged bicubically, to compare",
        "responses": _responses(_image("The crop, enlarged bicubically (PNG, in the photo's ICC profile)."),
                                *API_ERRORS, "NotFound", "Conflict"),
    }},
    "/healthz": {"get": {
        "operationId": "health", "summary": "Alive: the process answers (says nothing about the workers)",
        "security": [],
        "responses": _responses({"200": _json("Alive.", _ref("Health"))}),
    }},
    "/readyz": {"get": {
        "operationId": "ready", "summary": "Ready: the job workers are alive and their device is known",
        "security": [],
        "responses": _responses({"200": _json("Ready.", _ref("Ready"))}, "Unavailable"),
    }},
    "/metrics": {"get": {
        "operationId": "metrics", "summary": "Prometheus metrics",
        "responses": _responses({"200": _answer("The Prometheus text exposition format.",
                                                {"text/plain": {"schema": {"type": "string"}}})},
                                "Unauthorized", "Forbidden"),
    }},
    "/openapi.json": {"get": {
        "operationId": "openapi", "summary": "This document",
        "security": [],
        "responses": {"200": _json("The OpenAPI document.", {"type": "object"})},
    }},
}

DOCUMENT: Schema = {
    "openapi": "3.1.0",
    "info": {
        "title": "ZSSR image super-resolution",
        "version": VERSION,
        "description": "Enlarges a region of a JPEG photo, or the whole photo, 2x to 8x with a network trained on "
                       "the photo itself (Zero-Shot Super-Resolution). Errors are JSON {error, message} on every "
                       "path.",
    },
    # The key is optional: the API is open unless API keys are configured (probes and this document always are).
    "security": [{}, {"bearerAuth": []}],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "responses": RESPONSES,
        "headers": HEADERS,
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                           "description": "Authorization: Bearer KEY, when API keys are configured"}},
    },
}


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(DOCUMENT)
