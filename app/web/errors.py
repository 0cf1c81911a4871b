"""Maps every error to HTTP in one place: typed project errors and HTTP errors become JSON {error, message}."""

from __future__ import annotations

import logging
import math

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.errors import (BackendUnavailableError, BadImageError, Cancelled, ConfigError, ForbiddenError,
                        ImageTooLargeError, ImageTooSmallError, InvalidRequestError, JobFailedError, JobStateError,
                        NotJPEGError, QueueFullError, RateLimitedError, TooManyJobsError, UnauthorizedError,
                        UnknownJobError, ZSSRError)

log = logging.getLogger(__name__)

# The first entry that the error is an instance of wins, so subclasses come before their bases.
STATUS: tuple[tuple[type[ZSSRError], int, str], ...] = (
    (ImageTooLargeError, 413, "too_large"),
    (NotJPEGError, 415, "not_jpeg"),
    (ImageTooSmallError, 400, "too_small"),
    (BadImageError, 400, "bad_image"),
    (InvalidRequestError, 400, "bad_request"),
    (UnauthorizedError, 401, "unauthorized"),
    (ForbiddenError, 403, "forbidden"),
    (RateLimitedError, 429, "rate_limited"),
    (TooManyJobsError, 429, "too_many_jobs"),
    (UnknownJobError, 404, "not_found"),
    (JobStateError, 409, "conflict"),
    (Cancelled, 409, "cancelled"),
    (JobFailedError, 500, "internal"),
    (QueueFullError, 503, "queue_full"),
    (BackendUnavailableError, 503, "unavailable"),
)

COME_BACK_LATER = (QueueFullError, TooManyJobsError, RateLimitedError)

INTERNAL_MESSAGE = "something went wrong on the server; please try again"


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None):
    response = jsonify(error=code, message=message)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def install(app: Flask) -> None:
    upload_limit_mb = app.extensions["zssr"].settings.service.max_MB

    @app.errorhandler(ZSSRError)
    def project_error(exc: ZSSRError):
        for cls, status, code in STATUS:
            if isinstance(exc, cls):
                headers = {}
                # A full queue or a client over its limits always says when to come back; so does a backend that
                # knows (Redis away).
                retry_after = getattr(exc, "retry_after_s", 5 if isinstance(exc, COME_BACK_LATER) else None)
                if retry_after is not None:
                    headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
                if isinstance(exc, UnauthorizedError):
                    headers["WWW-Authenticate"] = 'Bearer realm="zssr"'
                log.info("%d %s: %s", status, code, exc)
                return error_response(status, code, str(exc), headers)
        if not isinstance(exc, ConfigError):
            log.error("unmapped error %s: %s", type(exc).__name__, exc)
        return internal_error(exc)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        return error_response(413, "too_large", f"the upload is larger than {upload_limit_mb:g} MB")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}  # e.g. Allow on 405
        return error_response(exc.code or 500, code, exc.description or exc.name, headers)

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal", INTERNAL_MESSAGE)
