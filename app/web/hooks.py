"""Per-request plumbing: a request id on every log line and response, and the security headers."""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

from app.logs import request_id
from app.metrics import record_rejected

# A client may pass its own id (to follow a request through its logs) if it is short and plain.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "img-src 'self' data: blob:",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def install(app: Flask) -> None:
    @app.before_request
    def assign_request_id() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _CLIENT_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        g.request_id_token = request_id.set(g.request_id)

    @app.after_request
    def add_headers(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "-")
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.blueprint == "api":
            response.headers.setdefault("Cache-Control", "no-store")
        if response.status_code >= 400:
            body = response.get_json(silent=True) if response.is_json else None
            record_rejected(response.status_code, body.get("error", "-") if isinstance(body, dict) else "-")
        return response

    @app.teardown_request
    def forget_request_id(exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            request_id.reset(token)
